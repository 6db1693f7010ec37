"""`cells`: PIGEON-style semantic geocells, the classes the model predicts.

Built from the train split only, so val/test points never shape a cell:
  1. within each country, admin-1 regions holding train samples are grouped; the smallest group
     under `min_samples` (N) merges into its nearest group (a neighbour when there is one) until
     every group has N or the country has one group;
  2. admin-1 regions without train samples join their nearest group (cells then cover the country);
  3. a group above `max_samples` (M) is split by k-means on its train points into ⌈count / M⌉
     cells, bounded by the Voronoi regions of the k-means centres.
Cells never cross a country border. Every record (val/test too) then gets the cell that contains
it: the cell of its admin-1 region (nearest centre when that region was split), else the nearest cell
of its country, else the nearest cell (counted in the stats).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from dataprep.config import CellsConfig
from runtime.cli import BadInput
from runtime.config import add_config_arguments, config_from_args
from runtime.geo import haversine_km
from runtime.records import Sample, read_manifest, write_manifest

STAGE = "cells"


def mean_point(lat: np.ndarray, lng: np.ndarray) -> tuple[float, float]:
    """Spherical mean (correct across the antimeridian)."""
    la, ln = np.radians(lat), np.radians(lng)
    v = np.array([np.cos(la) * np.cos(ln), np.cos(la) * np.sin(ln), np.sin(la)]).sum(axis=1)
    v /= np.linalg.norm(v)
    return float(np.degrees(np.arcsin(v[2]))), float(np.degrees(np.arctan2(v[1], v[0])))


@dataclass
class Group:
    codes: list[str]                          # admin-1 codes with train samples
    empty: list[str] = field(default_factory=list)  # admin-1 codes without any, attached for coverage
    count: int = 0


@dataclass
class CellSet:
    """The cells plus what assigning a point needs."""

    features: list[dict]                       # GeoJSON features, id order
    region_cells: dict[str, list[int]]         # adm1_code → cell ids (several when its group was split)
    centers: dict[int, tuple[float, float, float]]  # cell id → (x, y, cos_lat0) k-means centre, split cells only
    country_cells: dict[str, list[int]]

    @classmethod
    def from_geojson(cls, doc: dict) -> CellSet:
        """The cell set as `write_geojson` wrote it (a stage run alone assigns exactly as `all` does)."""
        features = sorted(doc["features"], key=lambda f: f["properties"]["id"])
        centers, country_cells = {}, defaultdict(list)
        for f in features:
            p = f["properties"]
            country_cells[p["country"]].append(p["id"])
            if p.get("center"):
                centers[p["id"]] = tuple(p["center"])
        return cls(features, {k: list(v) for k, v in doc["region_cells"].items()}, centers, dict(country_cells))

    def assign(self, s: Sample) -> tuple[int, str]:
        ids = self.region_cells.get(s.adm1_code or "")
        if ids:
            if len(ids) == 1:
                return ids[0], "region"
            d = [(s.lng * self.centers[i][2] - self.centers[i][0]) ** 2 + (s.lat - self.centers[i][1]) ** 2 for i in ids]
            return ids[int(np.argmin(d))], "region"
        ids = self.country_cells.get(s.country or "") or [f["properties"]["id"] for f in self.features]
        how = "country-nearest" if s.country in self.country_cells else "nearest"
        lat = [self.features[i]["properties"]["lat"] for i in ids]
        lng = [self.features[i]["properties"]["lng"] for i in ids]
        return ids[int(np.argmin(haversine_km(s.lat, s.lng, lat, lng)))], how


def simplified(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker without topology preservation (fast); regions it erases keep a safe version."""
    out = shapely.simplify(geoms, tolerance, preserve_topology=False)
    lost = shapely.is_empty(out) | ~shapely.is_valid(out)
    out[lost] = shapely.simplify(geoms[lost], tolerance / 10, preserve_topology=True)
    return shapely.make_valid(out)


def _group_regions(codes: list[str], counts: Counter, geom: dict, min_samples: int) -> list[Group]:
    groups = [Group([c], count=counts[c]) for c in sorted(codes) if counts[c] > 0]
    full = [c for c in sorted(codes) if counts[c] == 0]
    if not groups:
        return []
    g = np.array([geom[c] for g in groups for c in g.codes])
    dist = shapely.distance(g[:, None], g[None, :])  # single linkage: group distance = min over members
    np.fill_diagonal(dist, np.inf)
    alive = list(range(len(groups)))
    while len(alive) > 1:
        small = min(alive, key=lambda i: (groups[i].count, groups[i].codes[0]))
        if groups[small].count >= min_samples:
            break
        other = min((i for i in alive if i != small), key=lambda i: (round(dist[small, i], 3), groups[i].count, groups[i].codes[0]))
        groups[other].codes += groups[small].codes
        groups[other].count += groups[small].count
        dist[other] = dist[:, other] = np.minimum(dist[other], dist[small])
        dist[other, other] = np.inf
        alive.remove(small)
    groups = [groups[i] for i in alive]
    for c in full:
        gi = min(range(len(groups)), key=lambda i: (min(shapely.distance(geom[c], geom[m]) for m in groups[i].codes), i))
        groups[gi].empty.append(c)
    for gr in groups:
        gr.codes.sort()
    return sorted(groups, key=lambda gr: gr.codes[0])


def build(train: list[Sample], gdf, cfg: CellsConfig | None = None) -> CellSet:
    cfg = cfg or CellsConfig()
    min_samples, max_samples, simplify_deg, seed = cfg.min_samples, cfg.max_samples, cfg.simplify_deg, cfg.seed
    if not train:
        raise BadInput("no train records to build cells from")
    meta = {code: {"country": c, "country_name": n, "region": r} for code, c, n, r in
            zip(gdf["adm1_code"], gdf["country"], gdf["country_name"], gdf["region"], strict=True)}
    counts = Counter(s.adm1_code for s in train)
    by_country: dict[str, list[Sample]] = defaultdict(list)
    for s in train:
        by_country[s.country].append(s)
    country_codes = defaultdict(list)
    for code, m in meta.items():
        country_codes[m["country"]].append(code)
    rows = gdf[gdf["country"].isin(list(by_country))]
    simple = dict(zip(rows["adm1_code"], simplified(rows.geometry.values, simplify_deg), strict=True))
    exact = dict(zip(rows["adm1_code"], rows.geometry.values, strict=True))

    features, region_cells, centers, country_cells = [], defaultdict(list), {}, defaultdict(list)
    for country in sorted(by_country):
        pts = by_country[country]
        for gr in _group_regions(country_codes[country], counts, simple, min_samples):
            members = [s for s in pts if s.adm1_code in set(gr.codes)]
            shape = _union([exact[c] for c in gr.codes + gr.empty], [simple[c] for c in gr.codes + gr.empty])
            shape = shapely.make_valid(shapely.simplify(shape, simplify_deg))
            k = max(1, math.ceil(len(members) / max_samples)) if len(members) > max_samples else 1
            if k == 1:
                parts = [(members, shape, None)]
            else:
                parts = _kmeans_parts(members, shape, k, seed)
            for part_members, part_shape, center in parts:
                cid = len(features)
                lat, lng = mean_point(np.array([s.lat for s in part_members]), np.array([s.lng for s in part_members]))
                per = Counter(s.adm1_code for s in part_members)
                regions = [{"code": c, "name": meta[c]["region"], "weight": round(per[c] / len(part_members), 6)}
                           for c in sorted(per, key=lambda c: (-per[c], c))]
                regions += [{"code": c, "name": meta[c]["region"], "weight": 0.0}
                            for c in sorted(gr.codes + gr.empty)
                            if c not in per and (center is None or simple[c].intersects(part_shape))]
                features.append({
                    "type": "Feature",
                    "properties": {"id": cid, "country": country, "country_name": meta[gr.codes[0]]["country_name"],
                                   "regions": regions, "lat": round(lat, 5), "lng": round(lng, 5),
                                   "count": len(part_members),
                                   **({"center": list(center)} if center is not None else {})},
                    "geometry": shapely.geometry.mapping(shapely.transform(part_shape, lambda a: np.round(a, 3))),
                })
                country_cells[country].append(cid)
                for c in gr.codes + gr.empty:
                    region_cells[c].append(cid)
                if center is not None:
                    centers[cid] = center
    return CellSet(features, dict(region_cells), centers, dict(country_cells))


def _union(exact: list, simple: list):
    """Natural Earth's regions of a country share their edges exactly, so a coverage union is fast
    and clean; a derivative simplified region by region is no longer a coverage: a plain union."""
    try:
        return shapely.coverage_union_all(exact)
    except shapely.errors.GEOSException:
        return shapely.union_all(simple, grid_size=1e-4)


def _kmeans_parts(members: list[Sample], shape, k: int, seed: int):
    """k-means in a plane where degrees of longitude are scaled by cos(latitude) near the group."""
    from sklearn.cluster import KMeans  # slow to import: only when a cell is split
    lat0 = float(np.mean([s.lat for s in members]))
    cos0 = max(math.cos(math.radians(lat0)), 0.05)
    xy = np.array([(s.lng * cos0, s.lat) for s in members])
    km = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(xy)
    order = sorted(range(k), key=lambda i: (-km.cluster_centers_[i][1], km.cluster_centers_[i][0]))
    cells = shapely.voronoi_polygons(shapely.multipoints(km.cluster_centers_), extend_to=shapely.box(-1e4, -1e4, 1e4, 1e4), ordered=True)
    parts = []
    for i in order:
        region = shapely.transform(cells.geoms[i], lambda a: a / np.array([cos0, 1.0]))
        part = [s for s, lab in zip(members, km.labels_, strict=True) if lab == i]
        cx, cy = km.cluster_centers_[i]
        parts.append((part, shapely.intersection(shape, region), (float(cx), float(cy), cos0)))
    return parts


def assign_all(samples: list[Sample], cellset: CellSet) -> tuple[list[Sample], Counter]:
    how = Counter()
    out = []
    for s in samples:
        cid, h = cellset.assign(s)
        how[h] += 1
        out.append(s.with_(cell=cid))
    return out, how


def write_geojson(path: Path | str, cellset: CellSet, meta: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"type": "FeatureCollection", "dataprep": meta, "region_cells": cellset.region_cells,
           "features": cellset.features}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="enriched, split manifest")
    p.add_argument("--out", required=True, help="manifest to write (cell filled)")
    p.add_argument("--cells", required=True, help="cells.geojson to write")
    p.add_argument("--boundaries", default=None)
    add_config_arguments(p, CellsConfig)


def main(args: argparse.Namespace) -> int:
    from dataprep import boundaries

    samples = list(read_manifest(args.inp))
    if any(s.split is None or s.country is None for s in samples):
        raise BadInput(f"{args.inp}: run enrich and split first (records without country or split)")
    train = [s for s in samples if s.split == "train"]
    cfg = config_from_args(CellsConfig, args)
    cellset = build(train, boundaries.load(args.boundaries), cfg)
    out, how = assign_all(samples, cellset)
    write_geojson(args.cells, cellset, {"cells": len(cellset.features), "min_samples": cfg.min_samples,
                                        "max_samples": cfg.max_samples, "train_records": len(train),
                                        "assigned_by": dict(how)})
    write_manifest(args.out, out)
    print(f"cells: {len(cellset.features)} cells; records assigned by {dict(how)}")
    return 0
