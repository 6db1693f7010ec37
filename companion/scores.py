"""Play's scores: every round and guess in SQLite, so `baseline-report` can compare human and model
on exactly the same images. All of Play's SQL is here."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from companion.config import data_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    round TEXT PRIMARY KEY, image TEXT NOT NULL, player TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS guesses (
    round TEXT PRIMARY KEY REFERENCES rounds(round),
    player TEXT NOT NULL,
    image TEXT NOT NULL,          -- PlayImage.id
    image_path TEXT NOT NULL,
    truth TEXT NOT NULL,          -- ISO alpha-2
    guesses TEXT NOT NULL,        -- JSON list, the player's order
    model TEXT NOT NULL,          -- model id
    model_guesses TEXT NOT NULL,  -- JSON list, the model's top countries
    played TEXT NOT NULL
);
"""


class AlreadyAnswered(Exception):
    """A second answer to a round (two answers raced past the route's check)."""


class Scores:
    """The SQLite store (one connection, serialized: guesses are rare and tiny)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock, self._db:
            return self._db.execute(sql, args).fetchall()

    def add_round(self, round_id: str, image: str, player: str) -> None:
        self.execute("INSERT INTO rounds VALUES (?, ?, ?, ?)", (round_id, image, player, _now()))

    def round_of(self, round_id: str) -> tuple[str, str] | None:
        """(image id, player) of a round, None when there is no such round."""
        rows = self.execute("SELECT image, player FROM rounds WHERE round = ?", (round_id,))
        return rows[0] if rows else None

    def answered(self, round_id: str) -> bool:
        return bool(self.execute("SELECT 1 FROM guesses WHERE round = ?", (round_id,)))

    def add_guess(self, round_id: str, player: str, image: str, image_path: str, truth: str, guesses: list[str],
                  model: str, model_guesses: list[str]) -> None:
        try:
            self.execute("INSERT INTO guesses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (round_id, player, image, image_path, truth, json.dumps(guesses), model,
                          json.dumps(model_guesses), _now()))
        except sqlite3.IntegrityError:
            raise AlreadyAnswered(round_id) from None

    def guessed_images(self, player: str) -> set[str]:
        return {r[0] for r in self.execute("SELECT image FROM guesses WHERE player = ?", (player,))}

    def rows(self, player: str | None = None) -> list[dict]:
        sql = "SELECT player, image, image_path, truth, guesses, model, model_guesses FROM guesses"
        rows = self.execute(sql + (" WHERE player = ?" if player else "") + " ORDER BY played", (player,) if player else ())
        keys = ("player", "image", "image_path", "truth", "guesses", "model", "model_guesses")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for r in out:
            r["guesses"], r["model_guesses"] = json.loads(r["guesses"]), json.loads(r["model_guesses"])
        return out


def default_db() -> Path:
    return data_dir() / "play.sqlite"




def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
