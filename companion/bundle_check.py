"""The whole bundle checked before it is served: every reference resolves, the graph loads and its
input and output fit bundle.json, cells.geojson is a FeatureCollection of known cells. A bundle that
fails is refused at start with one line (`BundleError`), instead of starting and answering every
frame with `internal`, or a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from runtime.bundle import BundleMeta, load_meta
from runtime.cli import BadInput


class BundleError(BadInput):
    """The bundle cannot be served (the message says why, in one line)."""


def check_bundle(bundle_dir: Path | str) -> BundleMeta:
    bundle_dir = Path(bundle_dir)
    try:
        meta = load_meta(bundle_dir)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ())) or "bundle.json"
        raise BundleError(f"{bundle_dir}/bundle.json: {e.error_count()} invalid field(s), first {loc}: {err['msg']}") from None
    check_references(meta)
    check_graph(bundle_dir / "model.onnx", meta)
    check_cells_geojson(bundle_dir / "cells.geojson", meta)
    return meta


def check_references(meta: BundleMeta) -> None:
    if not meta.cells:
        raise BundleError("bundle.json has no cells")
    ids = [c.id for c in meta.cells]
    if ids != list(range(len(ids))):
        raise BundleError(f"cell ids must be 0..{len(ids) - 1} in order (cell i is the graph's output i)")
    countries = {c.code for c in meta.countries}
    regions = {r.code for r in meta.regions}
    for r in meta.regions:
        if r.country not in countries:
            raise BundleError(f"region {r.code!r} names country {r.country!r}, which is not in the bundle's countries")
    for c in meta.cells:
        if c.country not in countries:
            raise BundleError(f"cell {c.id} names country {c.country!r}, which is not in the bundle's countries")
        for cr in c.regions:
            if cr.code not in regions:
                raise BundleError(f"cell {c.id} names region {cr.code!r}, which is not in the bundle's regions")


def check_graph(path: Path, meta: BundleMeta) -> None:
    """The graph loads, takes pixels [N, 3, size, size] and gives logits [N, len(cells)] (run once to know)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # only looking: load fast
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for a bad file
        raise BundleError(f"{path} is not a loadable ONNX graph: {_one_line(e)}") from None
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if "pixels" not in inputs or "logits" not in outputs:
        raise BundleError(f"{path} must take 'pixels' and give 'logits'; it takes {sorted(inputs)} and gives {sorted(outputs)}")
    size = meta.input.size
    shape = inputs["pixels"]
    fixed = len(shape) == 4 and all(d == w for d, w in zip(shape[1:], (3, size, size), strict=True) if isinstance(d, int))
    if not fixed:
        raise BundleError(f"{path} takes pixels {_shape(shape)}, bundle.json's input is [N, 3, {size}, {size}]")
    try:
        logits = session.run(["logits"], {"pixels": np.zeros((1, 3, size, size), np.float32)})[0]
    except Exception as e:  # noqa: BLE001
        raise BundleError(f"{path} does not run on [1, 3, {size}, {size}] pixels: {_one_line(e)}") from None
    if logits.ndim != 2 or logits.shape[1] != len(meta.cells):
        raise BundleError(f"{path} gives logits {_shape(logits.shape)} for one image, bundle.json has {len(meta.cells)} cells")


def check_cells_geojson(path: Path, meta: BundleMeta) -> None:
    """Optional (the mini-map is then empty); when present, the features' ids are the bundle's cells."""
    if not path.is_file():
        return
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path} is not JSON: {_one_line(e)}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise BundleError(f"{path} is not a GeoJSON FeatureCollection")
    for i, f in enumerate(doc["features"]):
        props = f.get("properties") if isinstance(f, dict) else None
        cell = props.get("id") if isinstance(props, dict) else None
        if not isinstance(cell, int) or not 0 <= cell < len(meta.cells):
            raise BundleError(f"{path}: feature {i} has properties.id {cell!r}, not one of the {len(meta.cells)} cells")
        geom = f.get("geometry")
        if geom is not None and (not isinstance(geom, dict) or geom.get("type") not in ("Polygon", "MultiPolygon")):
            raise BundleError(f"{path}: feature {i} has no Polygon or MultiPolygon geometry")


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else "N" for d in shape) + "]"


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())[:300]
