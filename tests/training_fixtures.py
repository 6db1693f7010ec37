"""A tiny real dataset for training's tests: the committed fixture images run through dataprep.

When dataprep cannot label them here (no admin-1 boundaries available), a minimal stand-in is
built from the fixture JSONs instead: one cell per 60°×60° box, its country code made up from the
box, so that train → export → predict still runs on real pixels.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from paths import FIXTURES

from runtime.records import Sample, write_manifest

TINY_SIZE = 64          # input side for the tests' models: seconds, not minutes, on 2 cores


def _with_dataprep(out: Path) -> Path:
    from dataprep.config import DataprepConfig
    from dataprep.pipeline import run_all

    # a made-up game map over the fixtures' places, uneven on purpose, so the game's prior is exercised
    out.mkdir(parents=True, exist_ok=True)
    points = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
    rows = [f"test,{p['lat']},{p['lng']}" for i, p in enumerate(points) for _ in range(1 + i % 3)]
    (out / "game.csv").write_text("map,lat,lng\n" + "\n".join(rows) + "\n")
    cfg = DataprepConfig.from_dict({
        "sources": [str(FIXTURES)], "out": str(out), "datalist_check": False,
        "cells": {"min_samples": 3, "max_samples": 10}, "prior": {"locations": str(out / "game.csv")},
        "cache": {"enabled": False}, "report": {"enabled": False},
    })
    run_all(cfg)
    return out / "manifest.jsonl"


def _minimal(out: Path) -> Path:
    rows = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
    boxes = sorted({(math.floor(r["lat"] / 60), math.floor(r["lng"] / 60)) for r in rows})
    cell_of = {b: i for i, b in enumerate(boxes)}
    samples, feats = [], []
    for n, r in enumerate(rows):
        b = (math.floor(r["lat"] / 60), math.floor(r["lng"] / 60))
        code = f"X{chr(65 + cell_of[b])}"
        split = "val" if n % 8 == 3 else "test" if n % 8 == 5 else "train"
        samples.append(Sample(id=r["id"], image=str(FIXTURES / f"{r['id']}.jpg"), lat=r["lat"], lng=r["lng"],
                              location=r["location"], source=r["source"], sha256=f"{n:064x}", country=code,
                              country_name=f"box {code}", adm1_code=f"{code}-1", region=f"box {code}",
                              cell=cell_of[b], split=split))
    for i in cell_of.values():
        members = [s for s in samples if s.cell == i]
        lat = sum(s.lat for s in members) / len(members)
        lng = sum(s.lng for s in members) / len(members)
        code = f"X{chr(65 + i)}"
        feats.append({"type": "Feature", "geometry": None, "properties": {
            "id": i, "country": code, "country_name": f"box {code}", "lat": lat, "lng": lng,
            "regions": [{"code": f"{code}-1", "name": f"box {code}", "weight": 1.0}], "count": len(members)}})
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out / "manifest.jsonl", samples)
    (out / "cells.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return out / "manifest.jsonl"


def build_tiny_dataset(out: Path) -> Path:
    """The manifest of the fixture dataset (dataprep's own output when it can run here)."""
    try:
        return _with_dataprep(out)
    except (FileNotFoundError, ImportError, OSError) as e:
        print(f"dataprep could not label the fixtures ({e}); using the minimal stand-in")
        return _minimal(out / "minimal")


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("tiny-dataset"))


@pytest.fixture(scope="session")
def tiny_features(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-features")


def tiny_config(manifest: Path, features: Path, out: Path, **changes):
    from training.config import TrainConfig
    from training.models import HeadConfig

    d = {"manifest": str(manifest), "backbone": "tf_efficientnet_lite0", "size": TINY_SIZE,
         "features_dir": str(features), "out": str(out), "epochs": 4, "batch_size": 8, "wandb": "disabled",
         "warmup_epochs": 1, "patience": 10, "head": HeadConfig(hidden=32)}
    d.update(changes)
    return TrainConfig(**d)
