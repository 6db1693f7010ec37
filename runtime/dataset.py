"""dataprep's published files beside the manifest, as written and read: the boundary to training.

    manifest.jsonl          Sample rows (runtime.records)
    prior.json              the game's location mix: {"name", "source", "sha256", "points", "smoothing",
                            "cells": [π per cell id], "countries": {ISO2: π}} (dataprep.prior)
    manifest.tiles.json     where this manifest's packed tile caches are:
                            {"<size>": {"folder": path relative to the manifest's folder, "manifest_sha256"}}
    <cache folder>/         tiles.npy  uint8 [rows, size, size, 3], memory-mappable
                            index.json {"size", "ids", "first_row", "tiles", ...}: sample ids[i] owns rows
                                       first_row[i] … first_row[i] + tiles[i] - 1 (written last)

Training finds a cache through the manifest's tiles record, never by recomputing dataprep's folder
key; a record whose manifest has changed since (another stage re-run) is ignored, and training
decodes the images instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from runtime.cli import BadInput
from runtime.files import file_sha256


def load_prior(path: Path | str) -> dict:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc.get("cells"), list) or not isinstance(doc.get("countries"), dict):
        raise BadInput(f"{path}: not a prior file (cells, countries)")
    return doc


def tiles_record(manifest: Path | str) -> Path:
    manifest = Path(manifest)
    return manifest.with_name(manifest.stem + ".tiles.json")


def load_tiles(folder: Path | str) -> tuple[np.ndarray, dict]:
    """(tiles memmap, index) of a built cache folder."""
    folder = Path(folder)
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return np.load(folder / "tiles.npy", mmap_mode="r"), index


def publish_tiles(manifest: Path | str, folder: Path | str, size: int) -> None:
    """Record `folder` as the `size` px tile cache of `manifest` (whose records it was built from)."""
    manifest, record = Path(manifest), tiles_record(manifest)
    doc = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    doc[str(size)] = {"folder": os.path.relpath(Path(folder).resolve(), manifest.resolve().parent),
                      "manifest_sha256": file_sha256(manifest)}
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(record)


def tile_reader(manifest: Path | str, size: int) -> Callable[[str], np.ndarray] | None:
    """sample id → its uint8 tiles from the manifest's published cache, or None when it has none
    (or the manifest changed after the cache was built)."""
    manifest = Path(manifest)
    record = tiles_record(manifest)
    entry = json.loads(record.read_text(encoding="utf-8")).get(str(size)) if record.is_file() else None
    if entry is None or entry["manifest_sha256"] != file_sha256(manifest):
        return None
    folder = manifest.parent / entry["folder"]
    if not (folder / "index.json").is_file():
        return None
    tiles, index = load_tiles(folder)
    rows = {i: (f, n) for i, f, n in zip(index["ids"], index["first_row"], index["tiles"], strict=True)}

    def read(sample_id: str) -> np.ndarray:
        first, count = rows[sample_id]
        return np.array(tiles[first:first + count])

    return read
