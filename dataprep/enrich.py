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
from dataprep.config import EnrichConfig
from dataprep.drops import Drop, drops_path, write_drops
from runtime.config import add_config_arguments, config_from_args
from runtime.geo import KM_PER_DEG, haversine_km
from runtime.records import Sample, read_manifest, write_manifest

STAGE = "enrich"


class Locator:
    """Point → admin-1 row index (-1: none within max_km), vectorized and exact.

    A lookup grid answers most points with one array read: a grid cell that no boundary passes
    through lies wholly inside one polygon (its label) or wholly outside all of them. Only points
    in cells a boundary crosses, or within max_km of one, get exact tests: prepared point-in-polygon
    against the polygons whose boxes hold them, then the nearest boundary within max_km.
    """

    def __init__(self, gdf, cfg: EnrichConfig | None = None):
        cfg = cfg or EnrichConfig()
        self.max_km = max_km = cfg.max_km
        self.res = grid_deg = cfg.grid_deg
        self.geoms = np.asarray(gdf.geometry.values)
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        self.grid = build_grid(self.geoms, grid_deg, max_km)
        self._edges = None  # (boundary pieces, owner rows, their STRtree): built on first need

    def locate(self, lat, lng) -> tuple[np.ndarray, np.ndarray]:
        """(row index or -1, distance km: 0 inside a polygon) for each point."""
        lat, lng = np.asarray(lat, np.float64).ravel(), np.asarray(lng, np.float64).ravel()
        h, w = self.grid.shape
        row = np.clip(((90.0 - lat) / self.res).astype(np.int64), 0, h - 1)
        col = np.clip(((lng + 180.0) / self.res).astype(np.int64), 0, w - 1)
        idx = self.grid[row, col].astype(np.int64)
        dist = np.where(idx >= 0, 0.0, np.inf)
        todo = np.flatnonzero(idx == MIXED)
        idx[todo] = NONE
        if len(todo):
            self._contains(todo, lat, lng, idx, dist)
            self._nearest(todo[idx[todo] < 0], lat, lng, idx, dist)
        return idx, dist

    def _contains(self, todo, lat, lng, idx, dist) -> None:
        pts = shapely.points(lng[todo], lat[todo])
        p, g = self.tree.query(pts)  # box candidates; the exact test below uses prepared polygons
        order = np.lexsort((p, g))
        p, g = p[order], g[order]
        inside = np.zeros(len(p), bool)
        bounds = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, int)
        for a, b in zip(bounds, np.r_[bounds[1:], len(g)], strict=True):
            sel = todo[p[a:b]]
            inside[a:b] = shapely.contains_xy(self.geoms[g[a]], lng[sel], lat[sel])
        p, g = p[inside], g[inside]
        # a point on a shared border is in two polygons: keep the lowest row, deterministically
        order = np.lexsort((g, p))
        p, g = p[order], g[order]
        first = np.r_[True, p[1:] != p[:-1]] if len(p) else np.zeros(0, bool)
        idx[todo[p[first]]] = g[first]
        dist[todo[p[first]]] = 0.0

    def _nearest(self, todo, lat, lng, idx, dist) -> None:
        if not len(todo):
            return
        if self._edges is None:
            lines, owner = boundary_chunks(self.geoms)
            self._edges = lines, owner, shapely.STRtree(lines)
        lines, owner, tree = self._edges
        # nearest boundary in planar degrees, bounded by max_km at the point's latitude, then measured in km
        deg = self.max_km / (KM_PER_DEG * np.maximum(np.cos(np.radians(lat[todo])), 0.05))
        pts = shapely.points(lng[todo], lat[todo])
        for d in np.unique(np.ceil(deg * 100) / 100):  # few distinct bounds: query in batches
            sel = np.flatnonzero(np.ceil(deg * 100) / 100 == d)
            p, e = tree.query_nearest(pts[sel], max_distance=d, all_matches=False)
            if not len(p):
                continue
            near = shapely.get_coordinates(shapely.shortest_line(pts[sel][p], lines[e]))[1::2]
            km = haversine_km(lat[todo][sel][p], lng[todo][sel][p], near[:, 1], near[:, 0])
            ok = km <= self.max_km
            tgt = todo[sel[p[ok]]]
            idx[tgt], dist[tgt] = owner[e[ok]], km[ok]


NONE, MIXED = -1, -2


def boundary_chunks(geoms: np.ndarray, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Every polygon ring cut into linestrings of ≤ size vertices, with the polygon each belongs to:
    distances to short pieces are cheap, and the nearest piece gives the nearest polygon."""
    rings, ring_owner = [], []
    for i, g in enumerate(geoms):
        for poly in getattr(g, "geoms", [g]):
            if poly.geom_type != "Polygon":
                continue
            for ring in [poly.exterior, *poly.interiors]:
                rings.append(np.asarray(ring.coords))
                ring_owner.append(i)
    coords, index, owner = [], [], []
    for ring, i in zip(rings, ring_owner, strict=True):
        for a in range(0, len(ring) - 1, size - 1):
            piece = ring[a:a + size]
            if len(piece) >= 2:
                coords.append(piece)
                index.append(np.full(len(piece), len(owner)))
                owner.append(i)
    if not owner:
        return np.array([], dtype=object), np.array([], np.int64)
    return shapely.linestrings(np.concatenate(coords), indices=np.concatenate(index)), np.array(owner, np.int64)


def build_grid(geoms: np.ndarray, res: float, max_km: float) -> np.ndarray:
    """int16 [rows, cols] over lat 90…-90, lng -180…180: a polygon row, NONE, or MIXED (test exactly).

    A cell no boundary touches lies wholly inside or outside each polygon, so testing its centre
    (even-odd scanline fill, exact at cell centres) labels it; cells a boundary touches are MIXED.
    """
    w, h = round(360 / res), round(180 / res)
    grid = np.full((h, w), NONE, np.int32)
    edge = np.zeros((h, w), bool)
    for i, g in enumerate(geoms):
        rings = [np.column_stack(((c[:, 0] + 180.0) / res, (90.0 - c[:, 1]) / res))
                 for poly in _polygons(g) for c in map(np.asarray, (poly.exterior.coords, *(r.coords for r in poly.interiors)))]
        if rings:
            _fill(grid, rings, i)
            _mark_edges(edge, rings)
    # a boundary sample lands in every touched cell up to a quarter cell away: one cell of margin
    edge = _dilate_cols(_dilate_rows(edge, np.ones(h, np.int64)), 1)
    # cells within max_km of a boundary also need the exact path (the nearest-polygon fallback)
    ry = int(np.ceil(max_km / KM_PER_DEG / res)) + 1
    lat_far = np.maximum(np.abs(90.0 - np.arange(h) * res), np.abs(90.0 - (np.arange(h) + 1) * res))
    rx = np.minimum(np.ceil(max_km / (KM_PER_DEG * np.maximum(np.cos(np.radians(lat_far)), 1e-3)) / res) + 1, w // 2)
    near = _dilate_cols(_dilate_rows(edge, rx.astype(np.int64)), ry)
    grid[near & (grid < 0)] = MIXED
    grid[edge] = MIXED
    return grid.astype(np.int16)


def _polygons(g):
    if g.geom_type == "Polygon":
        return [g] if not g.is_empty else []
    return [p for part in getattr(g, "geoms", []) for p in _polygons(part)]


def _fill(grid: np.ndarray, rings: list[np.ndarray], value: int) -> None:
    """Even-odd fill of the cells whose centres lie inside the rings (pixel units; holes are rings)."""
    h, w = grid.shape
    rows, xs = [], []
    for ring in rings:
        x1, y1, x2, y2 = ring[:-1, 0], ring[:-1, 1], ring[1:, 0], ring[1:, 1]
        lo = np.ceil(np.minimum(y1, y2) - 0.5).astype(np.int64)  # rows whose centre r + 0.5 is in [min y, max y)
        hi = np.ceil(np.maximum(y1, y2) - 0.5).astype(np.int64)
        n = hi - lo
        keep = n > 0
        if not keep.any():
            continue
        e = np.repeat(np.flatnonzero(keep), n[keep])
        r = lo[e] + (np.arange(len(e)) - np.repeat(np.cumsum(n[keep]) - n[keep], n[keep]))
        yc = r + 0.5
        rows.append(r)
        xs.append(x1[e] + (yc - y1[e]) * (x2[e] - x1[e]) / (y2[e] - y1[e]))
    if not rows:
        return
    r, x = np.concatenate(rows), np.concatenate(xs)
    order = np.lexsort((x, r))
    r, x = r[order], x[order]
    # crossings pair up per row (even-odd): cells with centre c + 0.5 in [x_a, x_b)
    ra, xa, xb = r[0::2], x[0::2], x[1::2]
    c0 = np.clip(np.ceil(xa - 0.5), 0, w).astype(np.int64)
    c1 = np.clip(np.ceil(xb - 0.5), 0, w).astype(np.int64)
    ok = (c1 > c0) & (ra >= 0) & (ra < h)
    ra, c0, c1 = ra[ok], c0[ok], c1[ok]
    if not len(ra):
        return
    top, bottom, left, right = ra.min(), ra.max() + 1, c0.min(), c1.max()
    diff = np.zeros((bottom - top, right - left + 1), np.int32)
    np.add.at(diff, (ra - top, c0 - left), 1)
    np.add.at(diff, (ra - top, c1 - left), -1)
    inside = np.cumsum(diff, axis=1)[:, :-1] > 0
    grid[top:bottom, left:right][inside] = value


def _mark_edges(edge: np.ndarray, rings: list[np.ndarray]) -> None:
    """Mark the cells that samples along every ring segment (≤ ¼ cell apart) fall in."""
    h, w = edge.shape
    for ring in rings:
        a, b = ring[:-1], ring[1:]
        n = np.ceil(np.hypot(*(b - a).T) * 4).astype(np.int64) + 1
        e = np.repeat(np.arange(len(a)), n)
        t = (np.arange(len(e)) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(np.maximum(n - 1, 1), n)
        pts = a[e] + (b[e] - a[e]) * t[:, None]
        edge[np.clip(pts[:, 1].astype(np.int64), 0, h - 1), np.clip(pts[:, 0].astype(np.int64), 0, w - 1)] = True


def _dilate_rows(mask: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Per-row horizontal dilation with wrap-around at the antimeridian (radius per row)."""
    h, w = mask.shape
    pad = int(radius.max())
    wrapped = np.concatenate([mask[:, w - pad:], mask, mask[:, :pad]], axis=1) if pad else mask
    csum = np.concatenate([np.zeros((h, 1), np.int32), np.cumsum(wrapped, axis=1, dtype=np.int32)], axis=1)
    cols = np.arange(w)[None, :] + pad
    r = radius[:, None]
    rows = np.arange(h)[:, None]
    return (csum[rows, cols + r + 1] - csum[rows, cols - r]) > 0


def _dilate_cols(mask: np.ndarray, radius: int) -> np.ndarray:
    h, _ = mask.shape
    csum = np.concatenate([np.zeros((1, mask.shape[1]), np.int32), np.cumsum(mask, axis=0, dtype=np.int32)], axis=0)
    lo = np.clip(np.arange(h) - radius, 0, h)
    hi = np.clip(np.arange(h) + radius + 1, 0, h)
    return (csum[hi] - csum[lo]) > 0


def enrich(samples: list[Sample], gdf, cfg: EnrichConfig | None = None) -> tuple[list[Sample], list[Drop]]:
    if not samples:
        return [], []
    cfg = cfg or EnrichConfig()
    max_km = cfg.max_km
    loc = Locator(gdf, cfg)
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
    p.add_argument("--boundaries", default=None, help="admin-1 polygons: a path, or `download` (Natural Earth, cached once); "
                   "default: ../shared/geo/... or the committed derivative")
    add_config_arguments(p, EnrichConfig)


def main(args: argparse.Namespace) -> int:
    samples = list(read_manifest(args.inp))
    out, drops = enrich(samples, bnd.load(args.boundaries), config_from_args(EnrichConfig, args))
    write_manifest(args.out, out)
    write_drops(drops_path(args.out), drops)
    print(f"enrich: {len(out)} records, {len({s.country for s in out})} countries, {len(drops)} dropped")
    return 0
