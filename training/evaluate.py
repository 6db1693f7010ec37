"""`evaluate`: the metrics of a trained run or an exported bundle, with plots and an HTML report.

The point-estimate radius is tuned on validation only; test is measured once with it. Beside the
whole test split we always report its world-spread `yosshstd` part, where "it is the US" does not
pay.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from companion.bundle import load_meta
from companion.posterior import CellIndex
from companion.preprocess import prepare as prepare_pixels
from training.config import TrainConfig
from training.data import Dataset
from training.geo import evaluate_probs, pooled_log_probs, tune_radius

WORLD_SPREAD_SOURCE = "yosshstd"   # the source whose test images spread over the world


def subset_metrics(index: CellIndex, samples: list, probs: np.ndarray, radius_km: float, table: bool) -> dict:
    return evaluate_probs(index, probs, [s.lat for s in samples], [s.lng for s in samples],
                          [s.country for s in samples], [s.adm1_code for s in samples],
                          np.array([s.cell for s in samples]), radius_km, with_table=table)


def full_report(index: CellIndex, ds: Dataset, probs: dict[str, np.ndarray], radius_km: float | None = None) -> dict:
    """Metrics for val and test (and test's world-spread part); radius tuned on val when not given."""
    val, test = ds.split("val"), ds.split("test")
    if radius_km is None:
        radius_km = tune_radius(index, probs["val"], [s.lat for s in val], [s.lng for s in val])
    spread = np.array([WORLD_SPREAD_SOURCE in s.source for s in test])
    return {
        "point_radius_km": radius_km,
        "val": subset_metrics(index, val, probs["val"], radius_km, table=False),
        "test": subset_metrics(index, test, probs["test"], radius_km, table=True),
        "test_yosshstd": subset_metrics(index, [s for s, m in zip(test, spread, strict=True) if m],
                                        probs["test"][spread], radius_km, table=False),
    }


def evaluate_run(run: Path | str, out: Path | str | None = None, cfg_overrides: dict | None = None) -> dict:
    """Evaluate a run's best checkpoint on val/test; writes metrics.json, plots and report.html."""
    from training.train import load_trained, prepare, split_probs

    model, cfg, state = load_trained(run, pretrained_backbone=False)
    if cfg_overrides:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **cfg_overrides})
    prep = prepare(cfg)
    probs = {split: split_probs(model, prep, cfg, split) for split in ("val", "test")}
    report = full_report(prep.index, prep.ds, probs)
    report.update({"backbone": cfg.backbone, "size": prep.spec.size, "best_epoch": state["best_epoch"],
                   "datalist_sha256": prep.ds.datalist_sha256})
    from training.tracking import Tracker

    tracker = Tracker(cfg, Path(run), job="evaluate")
    tracker.log({f"{part}_{k}": v for part in ("val", "test", "test_yosshstd") for k, v in report[part].items()})
    write_report(report, prep.index, prep.ds, probs["test"], Path(out or Path(run) / "eval"), cfg, tracker)
    tracker.finish()
    return report


def bundle_probs(bundle: Path | str, ds: Dataset, samples: list, threads: int = 2) -> np.ndarray:
    """Per-image cell probabilities from the exported ONNX graph, exactly as the companion computes them."""
    import onnxruntime as ort

    meta = load_meta(bundle)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(Path(bundle) / "model.onnx"), so, providers=["CPUExecutionProvider"])
    spec = meta.input.spec()
    out = []
    for s in tqdm(samples, desc=f"onnx {Path(bundle).name}", unit="img", mininterval=10):
        x = prepare_pixels(Image.open(ds.image(s)), spec)
        logits = sess.run(["logits"], {"pixels": x})[0]
        out.append(np.exp(pooled_log_probs(logits, np.zeros(len(x), int), 1)[0]))
    return np.stack(out)


def onnx_latency_ms(model_path: Path | str, size: int, threads: int = 2, runs: int = 30) -> float:
    """Median ONNX Runtime time of one tile (batch 1) on `threads` CPU threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    times = []
    for n in range(runs + 3):
        t = time.perf_counter()
        sess.run(["logits"], {"pixels": x})
        if n >= 3:
            times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


# --- plots and the HTML report ---------------------------------------------------------------------------


def confusion_png(index: CellIndex, ds: Dataset, probs: np.ndarray, path: Path, top: int = 20) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = ds.split("test")
    truth = [s.country for s in test]
    pred = [index.country_codes[int(np.argmax(index.country_probs(p)))] for p in probs]
    names = [c for c, _ in sorted(((c, truth.count(c)) for c in set(truth)), key=lambda t: (-t[1], t[0]))][:top]
    labels = names + ["other"]
    pos = {c: i for i, c in enumerate(names)}
    m = np.zeros((len(labels), len(labels)))
    for t, p in zip(truth, pred, strict=True):
        m[pos.get(t, len(names)), pos.get(p, len(names))] += 1
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted country")
    ax.set_ylabel("true country (row-normalized)")
    ax.set_title("Country confusion, test split")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def error_map_png(index: CellIndex, ds: Dataset, probs: np.ndarray, radius_km: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.geo import predict_points

    test = ds.split("test")
    plat, plng = predict_points(index, probs, radius_km)
    fig, ax = plt.subplots(figsize=(10, 5))
    for f in ds.cell_polygons.get("features", []):
        geom = f.get("geometry") or {}
        polys = [geom["coordinates"]] if geom.get("type") == "Polygon" else geom.get("coordinates", [])
        for poly in polys:
            ring = np.asarray(poly[0])
            ax.fill(ring[:, 0], ring[:, 1], color="#e5e5e5", lw=0.2, ec="#bbbbbb")
    for s, la, ln in zip(test, plat, plng, strict=True):
        ax.plot([s.lng, ln], [s.lat, la], color="#d62728", lw=0.3, alpha=0.4)
    ax.scatter([s.lng for s in test], [s.lat for s in test], s=3, c="#1f77b4", label="truth", zorder=3)
    ax.scatter(plng, plat, s=3, c="#d62728", label="guess", zorder=3)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 80)
    ax.set_title("Test split: truth (blue) → guess (red)")
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _png_tag(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" style="max-width:100%">'


SUMMARY_KEYS = ["n", "country_top1", "country_top3", "country_top5", "country_balanced_acc", "region_top1",
                "region_top5", "cell_top1", "cell_top5", "median_km", "mean_km", "within_1km", "within_25km",
                "within_200km", "within_750km", "within_2500km", "geoguessr_score"]


def fmt(key: str, v) -> str:
    if key == "n":
        return str(int(v))
    if key.endswith("_km") or key == "geoguessr_score":
        return f"{v:.0f}"
    return f"{100 * v:.1f}%"


def write_report(report: dict, index: CellIndex, ds: Dataset, test_probs: np.ndarray, out: Path,
                 cfg: TrainConfig | None = None, tracker=None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    pngs = {"confusion": confusion_png(index, ds, test_probs, out / "confusion.png"),
            "error_map": error_map_png(index, ds, test_probs, report["point_radius_km"], out / "error_map.png")}
    parts = ["val", "test", "test_yosshstd"]
    rows = "".join(f"<tr><td>{k}</td>" + "".join(f"<td>{fmt(k, report[p][k])}</td>" for p in parts) + "</tr>"
                   for k in SUMMARY_KEYS)
    countries = "".join(
        f"<tr><td>{html.escape(r['country'])}</td><td>{r['n']}</td><td>{100 * r['top1']:.0f}%</td>"
        f"<td>{r['median_km']:.0f}</td><td>{html.escape(r['predicted_as'])}</td></tr>"
        for r in report["test"]["per_country"])
    page = f"""<!doctype html><meta charset="utf-8"><title>Lost &amp; Found evaluation</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}td,th{{padding:2px 8px;text-align:right}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style>
<h1>Evaluation: {html.escape(str(report.get('backbone', '')))}</h1>
<p>data-list {html.escape(str(report.get('datalist_sha256', ''))[:16])}…, point radius {report['point_radius_km']:.0f} km
(tuned on val). Location-disjoint splits.</p>
<table><tr><th>metric</th><th>val</th><th>test</th><th>test (yosshstd, world-spread)</th></tr>{rows}</table>
<h2>Per country (test)</h2><table><tr><th>country</th><th>n</th><th>top-1</th><th>median km</th>
<th>most often predicted as</th></tr>{countries}</table>
<h2>Confusion</h2>{_png_tag(pngs['confusion'])}<h2>Errors</h2>{_png_tag(pngs['error_map'])}
<h2>Config</h2><pre>{html.escape(json.dumps(cfg.to_dict() if cfg else {}, indent=1))}</pre>"""
    (out / "report.html").write_text(page, encoding="utf-8")
    if tracker is not None:
        tracker.images(pngs)
    return out / "report.html"
