"""`enrich`: country (ISO 3166-1 alpha-2 + name) and admin-1 region from coordinates.

Point-in-polygon against the admin-1 boundaries; a point in no polygon takes the nearest one within
`max_km` (coast, piers, imprecise coordinates); the rest are dropped as "no country within N km".
"""

from __future__ import annotations

import argparse

import numpy as np
import shapely
from tqdm import tqdm

from dataprep import boundaries as bnd
from dataprep.drops import Drop, drops_path, write_drops
from dataprep.records import Sample, read_manifest, write_manifest

STAGE = "enrich"
KM_PER_DEG = 111.195  # great-circle km per degree of latitude (mean Earth radius)


def haversine_km(lat1, lng1, lat2, lng2) -> np.ndarray:
    lat1, lng1, lat2, lng2 = (np.radians(np.asarray(v, np.float64)) for v in (lat1, lng1, lat2, lng2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


class Locator:
    """Point → admin-1 row index (-1: none within max_km), vectorized."""

    def __init__(self, gdf, max_km: float = 20.0, grid_deg: float = 0.1):
        self.gdf = gdf
        self.max_km = max_km
        self.geoms = gdf.geometry.values
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)

    def locate(self, lat, lng) -> tuple[np.ndarray, np.ndarray]:
        """(row index or -1, distance km: 0 inside a polygon) for each point."""
        lat, lng = np.asarray(lat, np.float64), np.asarray(lng, np.float64)
        idx = np.full(lat.shape, -1, np.int64)
        dist = np.full(lat.shape, np.inf)
        pts = shapely.points(lng, lat)
        p, g = self.tree.query(pts, predicate="within")
        # a point on a shared border is in two polygons: keep the lowest row, deterministically
        order = np.lexsort((g, p))
        p, g = p[order], g[order]
        first = np.r_[True, p[1:] != p[:-1]] if len(p) else np.zeros(0, bool)
        idx[p[first]] = g[first]
        dist[p[first]] = 0.0
        self._nearest(np.flatnonzero(idx < 0), lat, lng, pts, idx, dist)
        return idx, dist

    def _nearest(self, todo, lat, lng, pts, idx, dist) -> None:
        if not len(todo):
            return
        # planar nearest in degrees, bounded by max_km at the point's latitude, then measured in km
        deg = self.max_km / (KM_PER_DEG * np.maximum(np.cos(np.radians(lat[todo])), 0.05))
        for i, d in zip(todo, deg, strict=True):
            hit = self.tree.query_nearest(pts[i], max_distance=d)
            if not len(hit):
                continue
            g = int(hit.min())
            near = shapely.get_coordinates(shapely.shortest_line(pts[i], self.geoms[g]))[1]
            km = float(haversine_km(lat[i], lng[i], near[1], near[0]))
            if km <= self.max_km:
                idx[i], dist[i] = g, km


def enrich(samples: list[Sample], gdf, max_km: float = 20.0, grid_deg: float = 0.1) -> tuple[list[Sample], list[Drop]]:
    if not samples:
        return [], []
    loc = Locator(gdf, max_km, grid_deg)
    lat = np.array([s.lat for s in samples])
    lng = np.array([s.lng for s in samples])
    idx, _ = loc.locate(lat, lng)
    table = gdf[bnd.COLUMNS].to_dict("records")
    out, drops = [], []
    for s, i in zip(tqdm(samples, desc="enrich", unit="rec", leave=False), idx, strict=True):
        if i < 0 or table[i]["country"] is None:
            why = f"no country within {max_km:g} km" if i < 0 else f"in {table[i]['country_name']}, which has no ISO country code"
            drops.append(Drop(s.id, STAGE, why, s.image))
            continue
        out.append(s.with_(**table[i]))
    return out, drops


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="manifest to read")
    p.add_argument("--out", required=True, help="manifest to write")
    p.add_argument("--boundaries", default=None, help="admin-1 polygons (default: ../shared/geo/... or the committed derivative)")
    p.add_argument("--max-km", type=float, default=20.0, help="nearest-polygon fallback distance")


def main(args: argparse.Namespace) -> int:
    samples = list(read_manifest(args.inp))
    out, drops = enrich(samples, bnd.load(args.boundaries), args.max_km)
    write_manifest(args.out, out)
    write_drops(drops_path(args.out), drops)
    print(f"enrich: {len(out)} records, {len({s.country for s in out})} countries, {len(drops)} dropped")
    return 0
