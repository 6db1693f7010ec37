"""Helpers for the dataprep tests (real fixture images, the committed boundaries derivative)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

from paths import FIXTURES, ROOT

COMMITTED = ROOT / "dataprep" / "resources" / "admin1_simplified.geojson.gz"


@cache
def admin1():
    """The committed simplified admin-1 polygons (fast to load; what CI uses without ../shared)."""
    from dataprep import boundaries

    return boundaries.load(COMMITTED)


def fixture_ids() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


def copy_pairs(dst: Path, ids: list[str] | None = None) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for i in ids or fixture_ids():
        shutil.copyfile(FIXTURES / f"{i}.jpg", dst / f"{i}.jpg")
        shutil.copyfile(FIXTURES / f"{i}.json", dst / f"{i}.json")
    return dst


def sidecar(i: str) -> dict:
    return json.loads((FIXTURES / f"{i}.json").read_text())


def tree_digest(folder: Path) -> dict[str, str]:
    """path → sha256 of every file under folder: proof that nothing was modified or deleted."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataprep", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
