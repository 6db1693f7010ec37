"""Where collected rounds land: `<game-id>_<round>.png` + `.json` pairs, written so a kill loses nothing.

A pair is saved when its JSON exists: the PNG is written first, each file to a temporary name and
renamed into place, so a reader (`dataprep ingest`, a resumed run) never sees a half-written file
or a JSON without its image. The game id in the name makes a duplicate impossible; game-id claims
(one file per game, created exclusively) catch two workers that landed in the same game.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from runtime.cli import Failed

TMP_MARK = ".tmp-"


def pair_id(game_id: str, round_no: int) -> str:
    return f"{game_id}_{round_no}"


def write_atomic(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Write to a temporary name, then rename: readers see the old file or the whole new one.

    The temporary file is created with `mode` (less the umask), so a private file is never readable
    by others, not even for a moment; one left by a killed process of the same pid is replaced, not
    reused with its permissions. A failed write leaves no temporary file behind.
    """
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_session(path: Path, context) -> None:
    """A browser context's signed-in state (cookies: a login), private from its first byte."""
    write_atomic(path, json.dumps(context.storage_state()).encode(), mode=0o600)


class PairStore:
    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def has(self, game_id: str, round_no: int) -> bool:
        pid = pair_id(game_id, round_no)
        return (self.folder / f"{pid}.json").is_file() and (self.folder / f"{pid}.png").is_file()

    def save(self, game_id: str, round_no: int, png: bytes, meta: dict) -> str:
        pid = pair_id(game_id, round_no)
        image = self.folder / f"{pid}.png"
        write_atomic(image, png)
        body = {"id": pid, **meta}
        try:
            write_atomic(self.folder / f"{pid}.json", (json.dumps(body, ensure_ascii=False, sort_keys=True) + "\n").encode())
        except OSError:
            image.unlink(missing_ok=True)  # no image without its JSON, and the space back on a full disk
            raise
        return pid

    def count(self) -> int:
        return sum(1 for p in self.folder.glob("*.json") if p.with_suffix(".png").is_file())

    def clean(self) -> dict[str, int]:
        """Drop what a killed run left half-done: temporary files and PNGs whose JSON never came.

        Only safe while no other run writes here (the caller holds the `RunLock`).
        """
        removed = {"temp_files": 0, "orphan_images": 0}
        for p in self.folder.iterdir():
            if p.name.startswith(".") and TMP_MARK in p.name:
                p.unlink()
                removed["temp_files"] += 1
            elif p.suffix == ".png" and not p.with_suffix(".json").exists():
                p.unlink()
                removed["orphan_images"] += 1
        return removed


class Claims:
    """One file per game id, created with O_EXCL: the first worker in a game owns it."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def claim(self, game_id: str, owner: str) -> bool:
        if not game_id or "/" in game_id or game_id.startswith("."):
            raise ValueError(f"not a game id: {game_id!r}")
        try:
            fd = os.open(self.folder / game_id, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(owner + "\n")
        return True

    def owner(self, game_id: str) -> str | None:
        try:
            return (self.folder / game_id).read_text().strip()
        except FileNotFoundError:
            return None

    def clear(self) -> int:
        """Forget the claims of earlier runs: their workers are gone (the caller holds the `RunLock`),
        and a game the site hands out again should be resumed, not refused."""
        n = 0
        for p in self.folder.iterdir():
            p.unlink()
            n += 1
        return n


class RunLock:
    """One collector run per output folder: a second one would race on the same game ids."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._f = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a+")
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.seek(0)
            holder = self._f.read().strip() or "another process"
            self._f.close()
            raise Failed(f"{self.path.parent.parent} is being collected into by {holder}") from None
        self._f.seek(0)
        self._f.truncate()
        self._f.write(f"pid {os.getpid()}\n")
        self._f.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._f, fcntl.LOCK_UN)
        self._f.close()
