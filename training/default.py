"""`default`: rebuild the companion's default bundle from the dataset, reproducibly.

[warm-up run: a frozen head whose weights start the main run] → train → keep the better of the two on
the world validation → calibrate there (a temperature per prior) → export → measure the exported ONNX graph itself on test, with the
bundle's calibration, as the companion serves it → write the metrics into bundle.json and the report
under work/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from runtime.bundle import load_meta, save_meta
from training.config import DefaultConfig
from training.errors import ExportError
from training.evaluate import (
    bundle_log_probs,
    calibrated_probs,
    fit_calibrations,
    full_report,
    onnx_latency_ms,
    write_report,
)
from training.export import bundle_size_mb, export_bundle, install_bundle
from training.predict import split_log_probs
from training.prepare import prepare
from training.tracking import Tracker
from training.train import train


def headline(part: dict) -> dict:
    """The scalar metrics of a part's views (all, game), without tables or diagrams."""
    def scalars(m: dict) -> dict:
        return {k: v for k, v in m.items() if isinstance(v, int | float)}
    return {"all": scalars(part["all"]), "game": scalars(part["game"]), "macro_source": part["macro_source"],
            "per_source": {k: scalars(v) for k, v in part["per_source"].items()}}


def build_default(cfg: DefaultConfig, retrain: bool = False) -> dict:
    tc = cfg.train
    if cfg.warmup is not None:
        if retrain:
            shutil.rmtree(cfg.warmup.out, ignore_errors=True)
        head_prep = prepare(cfg.warmup)
        train(cfg.warmup, head_prep)
        tc.init_head = cfg.warmup.out
    prep = prepare(tc)
    if retrain:
        shutil.rmtree(tc.out, ignore_errors=True)
    run = train(tc, prep)
    from training.checkpoint import load_trained

    model, _, state = load_trained(run, pretrained_backbone=False)
    candidates = {"train": state["best"]}
    if cfg.warmup is not None:
        # ship the better of the two on the world validation: a fine-tune that does not beat the frozen
        # head it started from is not worth its training
        head_model, _, head_state = load_trained(cfg.warmup.out, pretrained_backbone=False)
        candidates["warmup"] = head_state["best"]
        if head_state["best"] >= state["best"]:
            run, tc, model, state, prep = Path(cfg.warmup.out), cfg.warmup, head_model, head_state, head_prep
    torch_lp = {s: split_log_probs(model, prep, tc, s) for s in ("val", "test")}
    # temperature (per prior) fitted on the world validation only
    cals = fit_calibrations(prep.index, prep.ds, torch_lp["val"], prep.log_adjust, prep.country_prior)
    served = "world" if "world" in cals else "none"
    torch_report = full_report(prep.index, prep.ds, torch_lp, cals, served, prep.country_prior)

    # export to a staging folder, measure the graph the companion will run, then move it into place
    staging = Path(cfg.report) / "bundle"
    export_bundle(run, prep.ds, staging, quantize=cfg.quantize, model_id=cfg.model_id, calibrations=cals, prior=served)
    # val stays torch (it chose the epoch and the temperatures); test is measured on the served graph
    onnx_lp = {"val": torch_lp["val"], "test": bundle_log_probs(staging, prep.ds, prep.ds.split("test"))}
    report = full_report(prep.index, prep.ds, onnx_lp, cals, served, prep.country_prior)
    report.update({
        "backbone": tc.backbone, "size": prep.spec.size, "best_epoch": state["best_epoch"],
        "datalist_sha256": prep.ds.datalist_sha256, "quantized": cfg.quantize,
        "run": str(run), "candidates": {k: {tc.select: v} for k, v in candidates.items()},
        "torch_test": headline(torch_report["test"]),
        "onnx_latency_ms_b1_2threads": onnx_latency_ms(staging / "model.onnx", prep.spec.size),
        "bundle_mb": bundle_size_mb(staging),
    })
    if report["bundle_mb"] > cfg.max_bundle_mb:
        raise ExportError(f"bundle is {report['bundle_mb']:.1f} MB, over {cfg.max_bundle_mb} MB: quantize or "
                           "choose a smaller backbone")
    tracker = Tracker(tc, Path(cfg.report), job="default")
    tracker.log({f"test_game_{k}": v for k, v in report["test"]["game"].items() if isinstance(v, int | float)})
    test_probs = calibrated_probs(prep.index, onnx_lp["test"], cals[served])
    write_report(report, prep.index, prep.ds, test_probs, Path(cfg.report), tc, tracker)
    tracker.finish()
    metrics = {"prior": served, "run": report["run"], "candidates": report["candidates"],
               "val": headline(report["val"]), "test": headline(report["test"]),
               "test_yosshstd": {k: v for k, v in report["test_yosshstd"].items() if isinstance(v, int | float)},
               "per_country_val": report["val"]["all"]["per_country"]}
    meta = load_meta(staging)
    meta.metrics.update(metrics)
    save_meta(staging, meta)
    install_bundle(staging, Path(cfg.bundle))
    (Path(cfg.report) / "metrics.json").write_text(json.dumps(report, indent=1))
    return report
