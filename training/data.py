"""What training reads from dataprep: the manifest (Sample rows) and the geocells, checked up front.

Every problem a run could hit late (a missing split, a sample without a cell, a data-list that is
not the one the config was written for) is raised here, before any training starts.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.bundle import Cell, CellRegion, Country, Region
from runtime.dataset import load_prior as read_prior
from runtime.geo import haversine_km
from runtime.records import Sample, digest, image_path, read_manifest, render_datalist
from training.errors import DataError

SPLITS = ("train", "val", "test")
CELL_POINTS = 8   # training places kept per cell as candidate pins (runtime.posterior.CellIndex.point)


def datalist_sha256(samples: list[Sample]) -> str:
    """The dataset version: the same digest dataprep records for its committed data-list."""
    return digest(render_datalist(samples))


@dataclass
class Dataset:
    manifest: Path
    samples: list[Sample]          # sorted by id
    cells: list[Cell]
    countries: list[Country]
    regions: list[Region]
    cell_polygons: dict            # GeoJSON FeatureCollection as dataprep wrote it
    datalist_sha256: str

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def image(self, s: Sample) -> Path:
        return image_path(s, self.manifest)

    def cell_latlng(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([c.lat for c in self.cells]), np.array([c.lng for c in self.cells])


def load_cells(path: Path) -> tuple[list[Cell], list[Country], list[Region], dict]:
    if not path.is_file():
        raise DataError(f"cells file {path} not found (run `python -m dataprep all` first)")
    try:
        geo = json.loads(path.read_text(encoding="utf-8"))
        props = [f["properties"] for f in geo["features"]]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{path} is not a cells GeoJSON FeatureCollection: {e}") from e
    props.sort(key=lambda p: p["id"])
    if [p["id"] for p in props] != list(range(len(props))):
        raise DataError(f"{path}: cell ids must be 0..{len(props) - 1}")
    countries: dict[str, str] = {}
    regions: dict[str, Region] = {}
    cells = []
    for p in props:
        countries.setdefault(p["country"], p.get("country_name") or p["country"])
        weights = [r for r in p.get("regions", []) if r.get("weight", 0) > 0]
        for r in weights:  # a region no training sample fell in can never be predicted: leave it out
            regions.setdefault(r["code"], Region(code=r["code"], name=r["name"], country=p["country"]))
        total = sum(r["weight"] for r in weights) or 1.0
        cells.append(Cell(id=p["id"], country=p["country"], lat=p["lat"], lng=p["lng"],
                          regions=[CellRegion(code=r["code"], weight=r["weight"] / total) for r in weights]))
    return (
        cells,
        [Country(code=c, name=n) for c, n in sorted(countries.items())],
        sorted(regions.values(), key=lambda r: r.code),
        geo,
    )


def load_dataset(manifest: Path | str, cells: Path | str | None = None, expect_datalist: str | None = None,
                 require_splits: tuple[str, ...] = SPLITS) -> Dataset:
    """Read and validate the manifest and its cells (default: cells.geojson beside the manifest)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise DataError(f"manifest {manifest} not found (run `python -m dataprep all` first)")
    samples = sorted(read_manifest(manifest), key=lambda s: s.id)
    if not samples:
        raise DataError(f"manifest {manifest} is empty")
    cell_list, countries, regions, geo = load_cells(Path(cells) if cells else manifest.parent / "cells.geojson")
    unlabelled = [s.id for s in samples if s.cell is None or s.split is None or s.country is None]
    if unlabelled:
        raise DataError(f"{len(unlabelled)} samples lack cell/split/country (e.g. {unlabelled[:3]}): "
                        "the manifest is not dataprep's final one")
    bad = [s.id for s in samples if not 0 <= s.cell < len(cell_list)]
    if bad:
        raise DataError(f"{len(bad)} samples name a cell outside 0..{len(cell_list) - 1} (e.g. {bad[:3]})")
    counts = Counter(s.split for s in samples)
    empty = [name for name in require_splits if not counts.get(name)]
    if empty:
        raise DataError(f"split(s) {', '.join(empty)} are empty in {manifest} (have: {dict(counts)})")
    leaked = _leaked_locations(samples)
    if leaked:
        raise DataError(f"{len(leaked)} locations appear in more than one split (e.g. {leaked[:3]})")
    cell_list = with_points(cell_list, [s for s in samples if s.split == "train"])
    digest = datalist_sha256(samples) if all(s.sha256 for s in samples) else "unversioned"
    if expect_datalist and expect_datalist != digest:
        raise DataError(f"data-list sha256 of {manifest} is {digest[:16]}…, the config expects "
                        f"{expect_datalist[:16]}…: rebuild the dataset or update `datalist_sha256` in the config")
    return Dataset(manifest, samples, cell_list, countries, regions, geo, digest)


def with_points(cells: list[Cell], train: list[Sample], k: int = CELL_POINTS) -> list[Cell]:
    """Each cell with up to k of its distinct training places: the medoid (the place with the least
    total distance to the others), then a seeded random sample of the rest: an unbiased picture of
    where in the cell an answer may be."""
    places: dict[int, dict[str, tuple[float, float]]] = {}
    for s in sorted(train, key=lambda s: s.id):
        places.setdefault(s.cell, {}).setdefault(s.location, (s.lat, s.lng))
    out = []
    for c in cells:
        pts = np.array(sorted(places.get(c.id, {}).values()))
        if len(pts) == 0:
            out.append(c.model_copy(update={"points": [(c.lat, c.lng)]}))
            continue
        d = haversine_km(pts[:, None, 0], pts[:, None, 1], pts[None, :, 0], pts[None, :, 1])
        medoid = int(d.sum(1).argmin())
        rest = [i for i in np.random.default_rng(c.id).permutation(len(pts)) if i != medoid][:k - 1]
        chosen = [medoid, *rest]
        out.append(c.model_copy(update={"points": [(round(float(pts[i, 0]), 5), round(float(pts[i, 1]), 5))
                                                   for i in chosen]}))
    return out


def load_prior(manifest: Path | str) -> dict | None:
    """dataprep's prior.json beside the manifest (the game's location mix), or None."""
    path = Path(manifest).parent / "prior.json"
    if not path.is_file():
        return None
    try:
        return read_prior(path)
    except (ValueError, json.JSONDecodeError) as e:
        raise DataError(str(e)) from e


def _leaked_locations(samples: list[Sample]) -> list[str]:
    splits: dict[str, set] = {}
    for s in samples:
        splits.setdefault(s.location, set()).add(s.split)
    return sorted(loc for loc, names in splits.items() if len(names) > 1)
