"""Tiny end-to-end: fixture images → dataprep → train → evaluate → export → ONNX predict.

Real pixels, real pretrained EfficientNet-Lite0 weights, a real ONNX Runtime session; 64 px inputs
so that it takes seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
from paths import FIXTURES, ROOT
from PIL import Image
from training_fixtures import tiny_config

from runtime.bundle import load_meta
from runtime.posterior import CellIndex, log_softmax, pool_log_probs
from runtime.preprocess import prepare as prepare_pixels
from training.checkpoint import load_trained
from training.data import DataError, load_dataset
from training.evaluate import evaluate_run
from training.export import PARITY_ATOL, export_bundle, parity
from training.prepare import prepare
from training.train import train


@pytest.fixture(scope="module")
def trained_run(tiny_manifest, tiny_features, tmp_path_factory):
    cfg = tiny_config(tiny_manifest, tiny_features, tmp_path_factory.mktemp("run") / "run")
    return train(cfg), cfg


def test_train_checkpoints_and_learns(trained_run):
    run, cfg = trained_run
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    state = torch.load(run / "last.pt", weights_only=False)["state"]
    assert state["epoch"] == cfg.epochs
    losses = [h["train_loss"] for h in state["history"]]
    assert losses[-1] < losses[0]  # the head fits its training data


def test_resume_continues_from_last_checkpoint(trained_run, tmp_path, capsys):
    run, cfg = trained_run
    import shutil

    before = torch.load(run / "last.pt", weights_only=False)["state"]
    copy = tmp_path / "resumed"
    shutil.copytree(run, copy)
    cfg2 = type(cfg)(**{**cfg.__dict__, "out": str(copy), "epochs": cfg.epochs + 1})
    train(cfg2)
    assert f"resumed {copy / 'last.pt'} at epoch {cfg.epochs}" in capsys.readouterr().out
    state = torch.load(copy / "last.pt", weights_only=False)["state"]
    assert state["epoch"] == cfg.epochs + 1 and state["history"][:-1] == before["history"]

    # a finished run (here: out of steps) resumed trains nothing and keeps its best checkpoint
    best = (copy / "best.pt").read_bytes()
    train(type(cfg)(**{**cfg2.__dict__, "epochs": cfg.epochs + 5, "max_steps": state["step"]}))
    assert torch.load(copy / "last.pt", weights_only=False)["state"]["epoch"] == cfg.epochs + 1
    assert (copy / "best.pt").read_bytes() == best


def test_resume_with_another_config_is_refused(trained_run, tmp_path):
    run, cfg = trained_run
    import shutil

    shutil.copytree(run, tmp_path / "run")
    changed = type(cfg)(**{**cfg.__dict__, "out": str(tmp_path / "run"), "lr": cfg.lr * 2})
    with pytest.raises(ValueError, match="another config"):
        train(changed)


def test_evaluate_writes_report(trained_run, tmp_path):
    run, _ = trained_run
    report = evaluate_run(run, tmp_path / "eval")
    for m in (report["val"]["all"], report["val"]["game"], report["test"]["all"], report["test_yosshstd"]):
        assert 0 <= m["country_top1"] <= m["country_top5"] <= 1
        assert 0 <= m["ece"] <= 1
    assert report["val"]["all"]["per_country"] and report["val"]["per_source"]
    assert report["calibrations"]["none"]["temperature"] > 0
    for name in ("metrics.json", "confusion.png", "error_map.png", "reliability.png", "report.html"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    assert "data:image/png;base64" in (tmp_path / "eval" / "report.html").read_text()


def test_export_then_onnx_predicts_on_real_images(trained_run, tmp_path):
    run, cfg = trained_run
    ds = load_dataset(cfg.manifest)
    cals = {"none": {"temperature": 1.5, "log_adjust": None},
            "world": {"temperature": 2.0, "log_adjust": np.linspace(-1, 1, len(ds.cells))}}
    bundle = export_bundle(run, ds, tmp_path / "bundle", metrics={"split": "test"}, calibrations=cals)
    meta = load_meta(bundle)
    assert meta.input.size == cfg.size and meta.backbone == cfg.backbone
    assert meta.datalist_sha256 == ds.datalist_sha256
    assert meta.prior == "world" and meta.calibrations["world"].temperature == 2.0
    assert meta.calibrations["world"].log_adjust[-1] == pytest.approx(1.0)
    assert all(c.points for c in meta.cells)
    assert meta.metrics["onnx_parity_max_abs_fp32"] <= PARITY_ATOL
    cells = json.loads((bundle / "cells.geojson").read_text())
    assert {f["properties"]["id"] for f in cells["features"]} == {c.id for c in meta.cells}

    sess = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["pixels"] and [o.name for o in sess.get_outputs()] == ["logits"]
    index = CellIndex.from_meta(meta)
    for path in sorted(FIXTURES.glob("*.jpg"))[:3]:
        x = prepare_pixels(Image.open(path), meta.input.spec())
        logits = sess.run(["logits"], {"pixels": x})[0]
        assert logits.shape == (len(x), len(meta.cells))
        probs = np.exp(pool_log_probs(log_softmax(logits)))
        assert index.country_probs(probs).sum() == pytest.approx(1)
        lat, lng = index.point(probs)
        assert -90 <= lat <= 90 and -180 <= lng <= 180
    # the bundle pins its graph: a damaged model.onnx is refused at load
    assert meta.model_sha256 and len(meta.model_sha256) == 64
    with open(bundle / "model.onnx", "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\0" * 8)
    with pytest.raises(ValueError, match="does not match the sha256"):
        load_meta(bundle)


def test_parity_onnx_vs_torch_on_real_images(trained_run, tmp_path):
    run, cfg = trained_run
    model, _, _ = load_trained(run)
    from training.export import export_onnx

    export_onnx(model, cfg.size, tmp_path / "m.onnx")
    x = np.concatenate([prepare_pixels(Image.open(p), load_meta_spec(cfg)) for p in sorted(FIXTURES.glob("*.jpg"))[:6]])
    assert parity(model, tmp_path / "m.onnx", x) <= PARITY_ATOL


def load_meta_spec(cfg):
    from training.models import input_spec

    return input_spec(cfg)


# --- bad configurations fail before training ---------------------------------------------------------


def test_unknown_backbone_is_refused(tiny_manifest, tiny_features, tmp_path):
    with pytest.raises(Exception, match="unknown backbone"):
        prepare(tiny_config(tiny_manifest, tiny_features, tmp_path / "r", backbone="resnet_nonexistent"))
    assert not (tmp_path / "r").exists()


def test_missing_weights_file_is_refused(tiny_manifest, tiny_features, tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        prepare(tiny_config(tiny_manifest, tiny_features, tmp_path / "r", weights=str(tmp_path / "no.pth"),
                            features_dir=str(tmp_path / "f")))


def test_datalist_mismatch_is_refused(tiny_manifest, tiny_features, tmp_path):
    with pytest.raises(DataError, match="data-list sha256"):
        prepare(tiny_config(tiny_manifest, tiny_features, tmp_path / "r", datalist_sha256="0" * 64))


def test_empty_split_is_refused(tiny_manifest, tmp_path):
    rows = [json.loads(line) for line in tiny_manifest.read_text().splitlines()]
    for r in rows:
        r["split"] = "train" if r["split"] == "val" else r["split"]
        r["image"] = str(tiny_manifest.parent / r["image"]) if not r["image"].startswith("/") else r["image"]
    bad = tmp_path / "manifest.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "cells.geojson").write_text((tiny_manifest.parent / "cells.geojson").read_text())
    with pytest.raises(DataError, match="val"):
        load_dataset(bad)


def test_cli_exits_2_with_a_clear_message(tiny_manifest, tmp_path):
    r = subprocess.run([sys.executable, "-m", "training", "train", "--manifest", str(tiny_manifest),
                        "--backbone", "not_a_model", "--out", str(tmp_path / "r"), "--wandb", "disabled"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown backbone 'not_a_model'" in r.stderr


@pytest.mark.slow
def test_finetune_starts_from_a_frozen_runs_head(trained_run, tmp_path):
    run, cfg = trained_run
    frozen_head, _, _ = load_trained(run, pretrained_backbone=False)
    ft = type(cfg)(**{**cfg.__dict__, "out": str(tmp_path / "ft"), "frozen": False, "init_head": str(run),
                      "epochs": 1, "max_steps": 1, "batch_size": 4, "lr": 1e-7, "backbone_lr": 1e-7})
    model, _, _ = load_trained(train(ft), pretrained_backbone=False)
    for (name, a), b in zip(frozen_head.head.state_dict().items(), model.head.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-4), name   # warm-started, then one tiny step
    with pytest.raises(ValueError, match="features, not"):
        train(type(ft)(**{**ft.__dict__, "out": str(tmp_path / "ft2"), "backbone": "mobilenetv2_100"}))


@pytest.mark.slow
def test_stage_cache_finetune_trains_only_the_top_and_exports(trained_run, tmp_path):
    """The partial fine-tune (cached trunk activations, several views) for a few steps on the fixtures."""
    from training.stages import Top, Trunk, build_stage_cache

    run, cfg = trained_run
    ft = type(cfg)(**{**cfg.__dict__, "out": str(tmp_path / "ft"), "frozen": False, "init_head": str(run),
                      "cut": 5, "views": 2, "stages_dir": str(tmp_path / "stages"), "epochs": 2, "max_steps": 3,
                      "batch_size": 8, "lr": 1e-3, "backbone_lr": 1e-3})
    model, _, state = load_trained(train(ft), pretrained_backbone=False)
    assert state["step"] == 3
    pretrained, _, _ = load_trained(run)   # the frozen run's backbone: the pretrained weights
    trunk_ft, trunk_0 = Trunk(model.backbone, 5).state_dict(), Trunk(pretrained.backbone, 5).state_dict()
    assert all(torch.equal(trunk_ft[k], trunk_0[k]) for k in trunk_0)          # the trunk never moves
    top_ft, top_0 = Top(model.backbone, 5).state_dict(), Top(pretrained.backbone, 5).state_dict()
    assert any(not torch.equal(top_ft[k], top_0[k]) for k in top_0)            # the top trained
    # view 0 of the cache is the served tile: top(cached view 0) is the whole backbone on the pixels
    ds = load_dataset(cfg.manifest)
    s = ds.split("val")[0]
    cache = build_stage_cache([(x.id, ds.image(x)) for x in ds.samples], cfg.backbone, tmp_path / "stages", 5, 2,
                              cfg.seed, cfg.weights, cfg.size)
    tiles, _ = cache.tile_rows([s.id])
    x = torch.from_numpy(prepare_pixels(Image.open(ds.image(s)), load_meta_spec(cfg)))
    with torch.inference_mode():
        cached = Top(model.backbone, 5)(torch.from_numpy(np.asarray(cache.acts[cache.rows(tiles)], np.float32)))
        np.testing.assert_allclose(cached.numpy(), model.backbone(x).numpy(), atol=2e-2)  # fp16 activations
    bundle = export_bundle(tmp_path / "ft", ds, tmp_path / "bundle")
    assert load_meta(bundle).metrics["onnx_parity_max_abs_fp32"] <= PARITY_ATOL


@pytest.mark.slow
def test_default_build_warms_up_fine_tunes_calibrates_and_serves(tiny_manifest, tiny_features, tmp_path):
    """`python -m training default` end to end on the fixtures: frozen warm-up head → stage-cache fine-tune →
    temperatures fitted on val per prior → bundle the companion loads and serves with the game's prior."""
    from companion.engine import Engine
    from training.config import DefaultConfig
    from training.default import build_default

    base = tiny_config(tiny_manifest, tiny_features, tmp_path / "main").to_dict()
    cfg = DefaultConfig.load_dict({
        "warmup": {"frozen": True, "out": str(tmp_path / "head"), "epochs": 2},
        "train": {**base, "frozen": False, "cut": 5, "views": 2, "stages_dir": str(tmp_path / "stages"),
                  "epochs": 1, "max_steps": 2, "lr": 1e-4, "backbone_lr": 1e-4},
        "bundle": str(tmp_path / "bundle"), "report": str(tmp_path / "report"),
    })
    report = build_default(cfg, retrain=True)
    if not (tiny_manifest.parent / "prior.json").is_file():
        pytest.skip("the fixtures could not go through dataprep here: no game prior to serve")
    assert set(report["calibrations"]) == {"none", "world"} and report["prior"] == "world"
    assert report["val"]["game"]["n"] == report["val"]["all"]["n"] > 0
    # the better of the warm-up head and the fine-tune on the world validation is what ships
    c = {k: v["geoguessr_score"] for k, v in report["candidates"].items()}
    assert report["run"] == str(tmp_path / ("head" if c["warmup"] >= c["train"] else "main"))
    meta = load_meta(tmp_path / "bundle")
    assert meta.prior == "world" and meta.metrics["val"]["game"]["country_top1"] >= 0
    assert (tmp_path / "report" / "reliability.png").stat().st_size > 0
    x = next(iter(sorted(FIXTURES.glob("*.jpg")))).read_bytes()
    world, plain = Engine(tmp_path / "bundle", prior="world"), Engine(tmp_path / "bundle", prior="none")
    lp = world.frame_log_probs(x)
    a, b = world.prediction(lp, top_k=50), plain.prediction(lp, top_k=50)
    assert sum(c.p for c in a.countries) == pytest.approx(1, abs=1e-6)
    assert [c.p for c in a.cells] != [c.p for c in b.cells]     # the prior changes what is served
    with pytest.raises(ValueError, match="prior 'europe'"):
        Engine(tmp_path / "bundle", prior="europe")
