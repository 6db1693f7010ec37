"""Play: the human baseline. A player sees an image, types five countries in order, then sees the
truth and the model's answer. Every guess is kept in SQLite, so `baseline-report` can put human and
model top-1/3/5 side by side on exactly the same images.
"""

from __future__ import annotations

import json
import random
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from companion.config import data_dir
from companion.country_names import CountryNames
from companion.world import world

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "work" / "datasets" / "streetview" / "manifest.jsonl"
FIXTURES = ROOT / "tests" / "fixtures" / "images"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
GUESSES = 5


@dataclass(frozen=True)
class PlayImage:
    id: str
    path: Path
    lat: float
    lng: float
    country: str        # ISO alpha-2
    country_name: str


def default_source() -> Path:
    """The dataset's test split when dataprep has built it, else the test fixtures."""
    return MANIFEST if MANIFEST.is_file() else FIXTURES


def load_images(source: Path) -> list[PlayImage]:
    """Images with their truth: a dataprep manifest (its test split) or a folder of `<id>.json` + image."""
    source = Path(source)
    if source.is_file():
        from dataprep.records import image_path, read_manifest

        rows = list(read_manifest(source))
        if any(r.split for r in rows):
            rows = [r for r in rows if r.split == "test"]
        found = [(r.id, image_path(r, source), r.lat, r.lng, r.country, r.country_name) for r in rows]
    elif source.is_dir():
        found = []
        for meta in sorted(source.glob("*.json")):
            img = next((meta.with_suffix(s) for s in IMAGE_SUFFIXES if meta.with_suffix(s).is_file()), None)
            if img is None:
                continue
            d = json.loads(meta.read_text(encoding="utf-8"))
            found.append((d.get("id", meta.stem), img, d["lat"], d["lng"], d.get("country"), d.get("country_name")))
    else:
        raise FileNotFoundError(f"no Play images at {source}")
    images = []
    for id_, path, lat, lng, code, name in found:
        if not code:
            hit = world().country_at(lat, lng)
            if hit is None:
                continue  # at sea on the simplified outline: no truth to score against
            code, name = hit
        images.append(PlayImage(id_, Path(path), float(lat), float(lng), code, name or world().names.get(code, code)))
    return images


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


def top_k_hits(rows: list[dict], key: str) -> dict[str, float]:
    n = len(rows)
    return {f"top{k}": (sum(r["truth"] in r[key][:k] for r in rows) / n if n else 0.0) for k in (1, 3, 5)}


class Play:
    def __init__(self, engine, source: Path | None = None, db: Path | None = None):
        self.engine = engine
        self.source = Path(source) if source else default_source()
        self.images = {im.id: im for im in load_images(self.source)}
        self.scores = Scores(Path(db) if db else default_db())
        self.names = dict(world().names) | {c.code: c.name for c in engine.meta.countries}
        self.country_code = CountryNames(self.names).code

    def new_round(self, player: str) -> dict:
        if not self.images:
            raise LookupError(f"no Play images in {self.source}")
        seen = self.scores.guessed_images(player)
        fresh = [i for i in self.images if i not in seen] or list(self.images)
        # a country first, then one of its images: the test split is half US, a game is not
        by_country: dict[str, list[str]] = {}
        for i in fresh:
            by_country.setdefault(self.images[i].country, []).append(i)
        image = random.choice(by_country[random.choice(sorted(by_country))])
        round_id = secrets.token_urlsafe(9)
        self.scores.execute("INSERT INTO rounds VALUES (?, ?, ?, ?)", (round_id, image, player, _now()))
        return {"round": round_id, "image": f"/v1/play/image/{round_id}", "remaining": len(fresh) - 1, "total": len(self.images)}

    def image_of(self, round_id: str) -> PlayImage | None:
        rows = self.scores.execute("SELECT image FROM rounds WHERE round = ?", (round_id,))
        return self.images.get(rows[0][0]) if rows else None

    def model_prediction(self, image: PlayImage):
        return self.engine.prediction(self.engine.frame_log_probs(image.path.read_bytes()), top_k=GUESSES)

    def guess(self, round_id: str, guesses: list[str], model_guesses: list[str]) -> dict:
        image = self.image_of(round_id)
        player = self.scores.execute("SELECT player FROM rounds WHERE round = ?", (round_id,))[0][0]
        self.scores.execute(
            "INSERT INTO guesses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (round_id, player, image.id, str(image.path), image.country, json.dumps(guesses), self.engine.model_id,
             json.dumps(model_guesses), _now()),
        )
        rows = self.scores.rows(player)
        return {
            "truth": {"code": image.country, "name": image.country_name, "lat": image.lat, "lng": image.lng},
            "guesses": [{"code": g, "name": self.names.get(g, g), "correct": g == image.country} for g in guesses],
            "model": [{"code": g, "name": self.names.get(g, g), "correct": g == image.country} for g in model_guesses],
            "score": {"rounds": len(rows), "human": top_k_hits(rows, "guesses"), "model": top_k_hits(rows, "model_guesses")},
        }


class NewRound(BaseModel):
    player: str = Field(default="player", min_length=1, max_length=64)


class Guess(BaseModel):
    round: str = Field(min_length=1, max_length=64)
    guesses: list[str] = Field(min_length=1, max_length=GUESSES)


def mount_play(app: FastAPI, play: Play, authorized, run, read_json) -> None:
    """The Play HTTP API (the web UI's Play tab drives it; writes need the pairing token).

    authorized(request) checks the token; run(fn, *args) runs blocking work off the event loop;
    await read_json(request, Model) reads a small JSON body (size-limited; None when empty). Bodies
    are read only after the token check: an unauthenticated body of any size is never parsed.
    """

    def error(status: int, code: str, message: str, **fields) -> JSONResponse:
        return JSONResponse({"type": "error", "code": code, "message": message, **fields}, status_code=status)

    @app.get("/v1/play/countries")
    async def countries():
        return [{"code": c, "name": n} for c, n in sorted(play.names.items(), key=lambda kv: kv[1])]

    @app.post("/v1/play/round")
    async def new_round(request: Request):
        if not authorized(request):
            return error(401, "unauthorized", "missing or wrong pairing token")
        body = await read_json(request, NewRound) or NewRound()
        try:
            return await run(play.new_round, body.player)
        except LookupError as e:
            return error(404, "bad_message", str(e))

    @app.get("/v1/play/image/{round_id}")
    async def image(round_id: str):
        im = await run(play.image_of, round_id)
        if im is None:
            return error(404, "bad_message", f"no round {round_id!r}")
        return FileResponse(im.path)

    @app.post("/v1/play/guess")
    async def guess(request: Request):
        if not authorized(request):
            return error(401, "unauthorized", "missing or wrong pairing token")
        body = await read_json(request, Guess)
        if body is None:
            return error(400, "bad_message", 'the body is {"round": ROUND, "guesses": [COUNTRY, ...]}')
        im = await run(play.image_of, body.round)
        if im is None:
            return error(404, "bad_message", f"no round {body.round!r}")
        if await run(play.scores.execute, "SELECT 1 FROM guesses WHERE round = ?", (body.round,)):
            return error(409, "bad_message", "this round has been answered already")
        # every bad entry is named at once, by position (`entries`, 0-based), so the page can mark them
        # and keep the rest as typed
        codes = [play.country_code(g) for g in body.guesses]
        unknown = [i for i, c in enumerate(codes) if c is None]
        if unknown:
            listed = ", ".join(repr(body.guesses[i]) for i in unknown)
            what = "country" if len(unknown) == 1 else "countries"
            return error(400, "bad_message", f"unknown {what} {listed}: type a name or an ISO code", entries=unknown)
        twice = [i for i, c in enumerate(codes) if c in codes[:i]]
        if twice:
            return error(400, "bad_message", f"{play.names[codes[twice[0]]]} is guessed twice", entries=twice)
        pred = await run(play.model_prediction, im)
        try:
            answer = await run(play.guess, body.round, codes, [c.code for c in pred.countries])
        except sqlite3.IntegrityError:  # two answers to one round raced
            return error(409, "bad_message", "this round has been answered already")
        # the model's pin and cells, for the result map beside the truth
        return answer | {"model_point": pred.point.model_dump(), "model_cells": [c.model_dump() for c in pred.cells]}

    @app.get("/v1/play/scores")
    async def scores(player: str | None = None):
        rows = await run(play.scores.rows, player)
        return {"rounds": len(rows), "human": top_k_hits(rows, "guesses"), "model": top_k_hits(rows, "model_guesses")}


def baseline_report(engine, db: Path | None = None, player: str | None = None) -> dict:
    """Human vs model top-1/3/5 on the images the humans played, the model re-run now where the
    image is still there (so a new model is compared on the same images)."""
    rows = Scores(Path(db) if db else default_db()).rows(player)
    for r in rows:
        path = Path(r["image_path"])
        if path.is_file():
            pred = engine.prediction(engine.frame_log_probs(path.read_bytes()), top_k=GUESSES)
            r["model_guesses"], r["model"] = [c.code for c in pred.countries], engine.model_id
    return {
        "images": len(rows),
        "players": sorted({r["player"] for r in rows}),
        "model": engine.model_id,
        "human": top_k_hits(rows, "guesses"),
        "model_scores": top_k_hits(rows, "model_guesses"),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
