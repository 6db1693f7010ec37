"""The shipped world outline (`static/world.json`, built by `make_world.py`): country at a point.

Play needs the true country of images that come with coordinates only (e.g. the test fixtures); a
point-in-polygon test on the simplified outline answers that without geopandas at runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

WORLD_JSON = Path(__file__).resolve().parent / "static" / "world.json"
COAST_SNAP_DEG = 0.5  # the outline is simplified at 0.1°: a coastal point may fall just outside


@dataclass(frozen=True)
class _Polygon:
    code: str
    name: str
    bbox: tuple[float, float, float, float]
    rings: list[np.ndarray]   # [exterior, holes...], each [K, 2] lng/lat


def _inside(ring: np.ndarray, x: float, y: float) -> bool:
    xs, ys = ring[:, 0], ring[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    crosses = (ys > y) != (yj > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = (xj - xs) * (y - ys) / (yj - ys) + xs
    return bool(np.count_nonzero(crosses & (x < xint)) % 2)


class World:
    def __init__(self, path: Path = WORLD_JSON):
        data = json.loads(path.read_text(encoding="utf-8"))
        self.polygons: list[_Polygon] = []
        for c in data["countries"]:
            if not c["code"]:
                continue
            for poly in c["polygons"]:
                rings = [np.asarray(r, np.float64) for r in poly]
                ext = rings[0]
                bbox = (ext[:, 0].min(), ext[:, 1].min(), ext[:, 0].max(), ext[:, 1].max())
                self.polygons.append(_Polygon(c["code"], c["name"], bbox, rings))
        self.names = {p.code: p.name for p in self.polygons}

    def country_at(self, lat: float, lng: float) -> tuple[str, str] | None:
        """(ISO alpha-2, name) of the country containing the point, else the nearest within ~50 km."""
        for p in self.polygons:
            x0, y0, x1, y1 = p.bbox
            if x0 <= lng <= x1 and y0 <= lat <= y1 and _inside(p.rings[0], lng, lat):
                if not any(_inside(h, lng, lat) for h in p.rings[1:]):
                    return p.code, p.name
        best, best_d = None, COAST_SNAP_DEG
        for p in self.polygons:
            x0, y0, x1, y1 = p.bbox
            if x0 - best_d <= lng <= x1 + best_d and y0 - best_d <= lat <= y1 + best_d:
                d = float(np.hypot(p.rings[0][:, 0] - lng, p.rings[0][:, 1] - lat).min())
                if d < best_d:
                    best, best_d = (p.code, p.name), d
        return best


@lru_cache(maxsize=1)
def world() -> World:
    return World()
