"""`default`: rebuild the companion's default bundle from the dataset, reproducibly.

train (frozen backbone, cached features) → evaluate on val/test (radius tuned on val) → export →
measure the exported ONNX graph itself on val/test (what the companion serves, quantized or not)
→ write its test metrics into bundle.json and the report under work/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from companion.bundle import load_meta, save_meta
from training.config import DefaultConfig
from training.evaluate import bundle_probs, full_report, onnx_latency_ms, write_report
from training.export import bundle_size_mb, export_bundle, install_bundle
from training.tracking import Tracker
from training.train import prepare, split_probs, train


def build_default(cfg: DefaultConfig, retrain: bool = False) -> dict:
    tc = cfg.train
    prep = prepare(tc)
    if retrain:
        shutil.rmtree(tc.out, ignore_errors=True)
    run = train(tc, prep)
    from training.train import load_trained

    model, _, state = load_trained(run, pretrained_backbone=False)
    torch_probs = {s: split_probs(model, prep, tc, s) for s in ("val", "test")}
    torch_report = full_report(prep.index, prep.ds, torch_probs)
    radius = torch_report["point_radius_km"]

    # export to a staging folder, measure the graph the companion will run, then move it into place
    staging = Path(cfg.report) / "bundle"
    export_bundle(run, prep.ds, staging, quantize=cfg.quantize, model_id=cfg.model_id, point_radius_km=radius)
    # val stays torch (it only chose the radius and the epoch); test is measured on the served graph
    onnx_probs = {"val": torch_probs["val"], "test": bundle_probs(staging, prep.ds, prep.ds.split("test"))}
    report = full_report(prep.index, prep.ds, onnx_probs, radius_km=radius)
    report.update({
        "backbone": tc.backbone, "size": prep.spec.size, "best_epoch": state["best_epoch"],
        "datalist_sha256": prep.ds.datalist_sha256, "quantized": cfg.quantize,
        "torch_test": {k: v for k, v in torch_report["test"].items() if k != "per_country"},
        "onnx_latency_ms_b1_2threads": onnx_latency_ms(staging / "model.onnx", prep.spec.size),
        "bundle_mb": bundle_size_mb(staging),
    })
    if report["bundle_mb"] > cfg.max_bundle_mb:
        raise RuntimeError(f"bundle is {report['bundle_mb']:.1f} MB, over {cfg.max_bundle_mb} MB: quantize or "
                           "choose a smaller backbone")
    tracker = Tracker(tc, Path(cfg.report), job="default")
    tracker.log({f"test_{k}": v for k, v in report["test"].items() if isinstance(v, int | float)})
    write_report(report, prep.index, prep.ds, onnx_probs["test"], Path(cfg.report), tc, tracker)
    tracker.finish()
    metrics = {"split": "test", **{k: v for k, v in report["test"].items() if k != "per_country"},
               "test_yosshstd": {k: v for k, v in report["test_yosshstd"].items()},
               "val": {k: v for k, v in report["val"].items()},
               "per_country": report["test"]["per_country"]}
    meta = load_meta(staging)
    meta.metrics.update(metrics)
    save_meta(staging, meta)
    install_bundle(staging, Path(cfg.bundle))
    (Path(cfg.report) / "metrics.json").write_text(json.dumps(report, indent=1))
    return report
