"""`export`: a trained run → a model bundle folder (runtime.bundle): one ONNX graph
pixels [N, 3, S, S] → logits [N, cells], bundle.json and cells.geojson.

The folder is written beside the target and renamed into place, so a companion never sees half a
bundle. The fp32 graph is checked against torch on real image tiles before anything is replaced.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from runtime.bundle import BundleMeta, Calibration, InputMeta, save_meta
from runtime.files import file_sha256
from runtime.preprocess import InputSpec
from runtime.preprocess import prepare as prepare_pixels
from training.backbones import short_name
from training.checkpoint import load_trained
from training.config import TrainConfig
from training.data import Dataset
from training.errors import ExportError
from training.models import input_spec

PARITY_ATOL = 1e-4


class ParityError(ExportError):
    """ONNX Runtime and torch disagree on the exported graph."""


def bundle_meta(ds: Dataset, cfg: TrainConfig, spec: InputSpec, model_id: str, created: str,
                calibrations: dict[str, dict] | None = None, prior: str = "none") -> BundleMeta:
    cals = {name: Calibration(temperature=c["temperature"],
                              log_adjust=None if c["log_adjust"] is None else [round(float(v), 6) for v in c["log_adjust"]])
            for name, c in (calibrations or {"none": {"temperature": 1.0, "log_adjust": None}}).items()}
    return BundleMeta(
        model_id=model_id, created=created, backbone=cfg.backbone,
        input=InputMeta(size=spec.size, mean=spec.mean, std=spec.std),
        countries=ds.countries, regions=ds.regions, cells=ds.cells,
        datalist_sha256=ds.datalist_sha256, config=cfg.to_dict(), calibrations=cals, prior=prior,
    )


def export_onnx(model: torch.nn.Module, size: int, path: Path) -> None:
    model.eval()
    torch.onnx.export(
        model, (torch.zeros(1, 3, size, size),), str(path), input_names=["pixels"], output_names=["logits"],
        dynamic_axes={"pixels": {0: "N"}, "logits": {0: "N"}}, opset_version=17, dynamo=False,
    )


def parity(model: torch.nn.Module, onnx_path: Path, pixels: np.ndarray) -> float:
    """Max |ONNX Runtime − torch| over the logits of `pixels` (float32 [N, 3, S, S])."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"pixels": pixels})[0]
    with torch.inference_mode():
        want = model(torch.from_numpy(pixels)).numpy()
    return float(np.abs(got - want).max())


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the MatMul/Gemm weights (activations stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])


def cells_geojson(ds: Dataset) -> dict:
    """The cells' polygons for drawing, properties reduced to {id, country, name}."""
    names = {c.code: c.name for c in ds.countries}
    regions = {r.code: r.name for r in ds.regions}
    feats = []
    for f in ds.cell_polygons.get("features", []):
        p = f["properties"]
        cell = ds.cells[p["id"]]
        top = max(cell.regions, key=lambda r: r.weight).code if cell.regions else None
        name = names.get(cell.country, cell.country) + (f" · {regions[top]}" if top in regions else "")
        feats.append({"type": "Feature", "properties": {"id": cell.id, "country": cell.country, "name": name,
                                                        "lat": cell.lat, "lng": cell.lng},
                      "geometry": f.get("geometry")})
    return {"type": "FeatureCollection", "features": feats}


def export_bundle(run: Path | str, ds: Dataset, out: Path | str, quantize: bool = False,
                  metrics: dict | None = None, model_id: str | None = None, calibrations: dict | None = None,
                  prior: str | None = None, parity_images: list[Path] | None = None) -> Path:
    """Write the bundle for a run's best checkpoint to `out` (replacing it atomically)."""
    model, cfg, state = load_trained(run)
    spec = input_spec(cfg)
    out = Path(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)  # parents: `out`'s folder may not exist yet
    try:
        fp32 = tmp / "model.onnx"
        export_onnx(model, spec.size, fp32)
        images = parity_images or [ds.image(s) for s in ds.split("test")[:4]]
        pixels = np.concatenate([prepare_pixels(Image.open(p), spec) for p in images])
        diff = parity(model, fp32, pixels)
        if diff > PARITY_ATOL:
            raise ParityError(f"ONNX Runtime and torch differ by {diff:.2e} (> {PARITY_ATOL}) on real images")
        if quantize:
            quantize_int8(fp32, tmp / "model.int8.onnx")
            (tmp / "model.int8.onnx").replace(fp32)
        created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        prior = prior or ("world" if calibrations and "world" in calibrations else "none")
        meta = bundle_meta(ds, cfg, spec, model_id or f"lf-{short_name(cfg.backbone)}-cells-{created[:10]}", created, calibrations, prior)
        meta.metrics = dict(metrics or {})
        meta.metrics["onnx_parity_max_abs_fp32"] = diff
        meta.config = {**cfg.to_dict(), "quantized": "int8-dynamic" if quantize else "fp32",
                       "best_epoch": state["best_epoch"]}
        meta.model_sha256 = file_sha256(fp32)
        save_meta(tmp, meta)
        (tmp / "cells.geojson").write_text(json.dumps(cells_geojson(ds), separators=(",", ":")), encoding="utf-8")
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _swap(ready: Path, out: Path) -> None:
    """Put the complete folder `ready` at `out` with renames only (the old one goes last)."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.replace(old)
    ready.replace(out)
    shutil.rmtree(old, ignore_errors=True)


def install_bundle(src: Path, out: Path) -> Path:
    """Copy a finished bundle folder to `out` atomically (copy beside it, then rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    _swap(tmp, out)
    return out


def bundle_size_mb(folder: Path | str) -> float:
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file()) / 1e6
