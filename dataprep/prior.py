"""`prior`: where the game sends players, per geocell and per country (the serving-time prior).

Our images are 48% US; the GeoGuessr World map is 4.6% US. Training learns p_train(cell | x) on
our mix; the companion corrects it to the game's mix by logit adjustment,
p(cell | x) ∝ p_model(cell | x) · π_game(cell) / π_train(cell). This stage derives π_game from a list
of game locations (`map,lat,lng` CSV, gzipped or not): each point is labelled by the same
point-in-polygon as our images (enrich) and given the cell that would contain it (cells.assign:
its admin-1's cell, else the nearest cell of its country, else the nearest cell: a country we have no
cell for lends its mass to its neighbours, which is what the model would answer there anyway).
Add-`smoothing` counts keep every cell possible.

Written beside the manifest as `prior.json` (format: runtime.dataset; countries are π over the
game's points, unsmoothed).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np

from dataprep.cells import CellSet
from dataprep.config import EnrichConfig, PriorConfig
from runtime.cli import BadInput
from runtime.config import add_config_arguments, config_from_args
from runtime.records import Sample

STAGE = "prior"


def read_locations(path: Path | str) -> list[tuple[float, float]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"game locations {path} not found")
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode("utf-8") if raw[:2] == b"\x1f\x8b" else raw.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"lat", "lng"} <= set(rows[0]):
        raise BadInput(f"{path}: expected a CSV with lat and lng columns")
    out = []
    for n, r in enumerate(rows, 2):
        try:
            lat, lng = float(r["lat"]), float(r["lng"])
        except (TypeError, ValueError):
            raise BadInput(f"{path}:{n}: lat/lng {r.get('lat')!r},{r.get('lng')!r} are not numbers") from None
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise BadInput(f"{path}:{n}: lat/lng {lat},{lng} out of range")
        out.append((lat, lng))
    return out


def build(points: list[tuple[float, float]], cellset: CellSet, gdf, enrich_cfg: EnrichConfig | None = None,
          prior_cfg: PriorConfig | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """(π per cell [C], π per country over the points) for game locations `points`, labelled as `enrich` labels."""
    from dataprep.enrich import enrich

    if not points:
        raise BadInput("no game locations to build a prior from")
    pts = [Sample(id=f"{n:08d}", image="", lat=la, lng=ln, location=f"{la},{ln}", source="game")
           for n, (la, ln) in enumerate(points)]
    labelled, _ = enrich(pts, gdf, enrich_cfg)
    counts = np.full(len(cellset.features), float((prior_cfg or PriorConfig()).smoothing))
    for s in labelled:
        counts[cellset.assign(s)[0]] += 1
    countries = Counter(s.country for s in labelled if s.country)
    total = sum(countries.values())
    return counts / counts.sum(), {c: n / total for c, n in sorted(countries.items())}


def write(path: Path | str, source: Path | str, cell_prior: np.ndarray, country_prior: dict[str, float],
          points: int, smoothing: float, name: str = "world") -> dict:
    doc = {"name": name, "source": Path(source).name, "sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest(),
           "points": points, "smoothing": smoothing, "cells": [round(float(p), 8) for p in cell_prior],
           "countries": {c: round(p, 6) for c, p in country_prior.items()}}
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=0) + "\n", encoding="utf-8")
    tmp.replace(path)
    return doc


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="final manifest (cells assigned)")
    p.add_argument("--cells", required=True, help="the dataset's cells.geojson")
    p.add_argument("--locations", required=True, help="game locations CSV (map,lat,lng), .gz allowed")
    p.add_argument("--out", required=True, help="prior.json to write")
    p.add_argument("--boundaries", default=None)
    add_config_arguments(p, PriorConfig, only=("smoothing",))
    add_config_arguments(p, EnrichConfig)  # the points are labelled as `all` labels them


def main(args: argparse.Namespace) -> int:
    from dataprep import boundaries

    doc = json.loads(Path(args.cells).read_text(encoding="utf-8"))
    cellset = CellSet.from_geojson(doc)
    pts = read_locations(args.locations)
    pc = config_from_args(PriorConfig, args)
    cell_prior, country_prior = build(pts, cellset, boundaries.load(args.boundaries), config_from_args(EnrichConfig, args), pc)
    write(args.out, args.locations, cell_prior, country_prior, len(pts), pc.smoothing)
    print(f"prior: {len(pts)} game locations over {len(cell_prior)} cells, {len(country_prior)} countries")
    return 0
