"""`evaluate`: the metrics of a trained run or an exported bundle, with plots and an HTML report.

The headline is the **world validation**: the val split (location-disjoint; non-US places drawn at
twice the US rate by dataprep's split), scored three ways: over all its images, **game-weighted**
(each image weighted by π_game(country) / π_val(country), so the country mix is the GeoGuessr World
map's), and macro-averaged over sources. Calibration (temperature) and the game's prior are fitted or
applied on val only; test is measured once with them. Beside the whole test split we report its
world-spread `yosshstd` part.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from runtime.bundle import load_meta
from runtime.posterior import CellIndex, calibrate
from runtime.preprocess import prepare as prepare_pixels
from training.calibration import fit_temperature
from training.config import TrainConfig
from training.data import Dataset
from training.geo import evaluate_probs, pooled_log_probs

WORLD_SPREAD_SOURCE = "yosshstd"   # the source whose images spread over the world
MACRO_KEYS = ("country_top1", "country_top5", "median_km", "geoguessr_score", "ece")


def short_source(source: str) -> str:
    """'yosshstd/GeoGuessrAI' → 'yosshstd'; 'jadi1/mini-PIGEON' → 'mini-PIGEON' (the data README's names)."""
    owner, _, repo = source.partition("/")
    return {"ShenranTomWang": "shenran", "hunterprice04": "hunterprice", "jadi1": "minipigeon"}.get(owner, owner or repo)


def game_weights(samples: list, country_prior: dict[str, float] | None) -> np.ndarray:
    """Per-image weights that give the images the game's country mix: π_game(c) / π_here(c), mean 1.
    A country the game never visits weighs 0; without a prior every image weighs 1."""
    if not samples or not country_prior:
        return np.ones(len(samples))
    counts = Counter(s.country for s in samples)
    w = np.array([country_prior.get(s.country, 0.0) * len(samples) / counts[s.country] for s in samples])
    return w / w.mean() if w.sum() > 0 else np.ones(len(samples))


def subset_metrics(index: CellIndex, samples: list, probs: np.ndarray, table: bool = False,
                   weights: np.ndarray | None = None) -> dict:
    return evaluate_probs(index, probs, [s.lat for s in samples], [s.lng for s in samples],
                          [s.country for s in samples], [s.adm1_code for s in samples],
                          np.array([s.cell for s in samples]), with_table=table, weights=weights)


def part_report(index: CellIndex, samples: list, probs: np.ndarray, country_prior: dict | None,
                table: bool = False) -> dict:
    """One split scored all ways: all images, game-weighted, per source and macro over sources."""
    per_source = {}
    for src in sorted({s.source for s in samples}):
        m = np.array([s.source == src for s in samples])
        per_source[short_source(src)] = subset_metrics(index, [s for s, k in zip(samples, m, strict=True) if k],
                                                       probs[m])
    macro = {k: float(np.mean([r[k] for r in per_source.values()])) for k in MACRO_KEYS} if per_source else {}
    return {"all": subset_metrics(index, samples, probs, table=table),
            "game": subset_metrics(index, samples, probs, weights=game_weights(samples, country_prior)),
            "macro_source": macro, "per_source": per_source}


def country_truth(index: CellIndex, samples: list) -> np.ndarray:
    ci = {c: i for i, c in enumerate(index.country_codes)}
    return np.array([ci.get(s.country, -1) for s in samples])


def fit_calibrations(index: CellIndex, ds: Dataset, val_log_probs: np.ndarray, log_adjust: np.ndarray | None,
                     country_prior: dict | None) -> dict[str, dict]:
    """name → {"temperature", "log_adjust"} for "none" and (with a prior) "world", fitted on val."""
    val = ds.split("val")
    truth = country_truth(index, val)
    out = {"none": {"temperature": fit_temperature(val_log_probs, index, truth), "log_adjust": None}}
    if log_adjust is not None:
        w = game_weights(val, country_prior)
        out["world"] = {"temperature": fit_temperature(val_log_probs, index, truth, w, log_adjust),
                        "log_adjust": log_adjust}
    return out


def calibrated_probs(index: CellIndex, log_probs: np.ndarray, cal: dict) -> np.ndarray:
    """Cell probabilities under one of `fit_calibrations`' entries (its temperature and prior)."""
    return np.exp(calibrate(log_probs, cal["temperature"], cal["log_adjust"], index.cell_country))


def full_report(index: CellIndex, ds: Dataset, log_probs: dict[str, np.ndarray], calibrations: dict[str, dict],
                served: str, country_prior: dict | None) -> dict:
    """val and test (and test's world-spread part) under the served calibration; beside it the other
    prior and the uncalibrated model (T = 1), so the model card can show what each step buys."""
    val, test = ds.split("val"), ds.split("test")
    spread = np.array([WORLD_SPREAD_SOURCE in s.source for s in test])

    def probs(split: str, cal: dict) -> np.ndarray:
        return calibrated_probs(index, log_probs[split], cal)

    report = {"prior": served,
              "calibrations": {k: {"temperature": v["temperature"], "prior": v["log_adjust"] is not None}
                               for k, v in calibrations.items()}}
    for name, cal in calibrations.items():
        suffix = "" if name == served else f"_prior_{name}"
        pv, pt = probs("val", cal), probs("test", cal)
        report["val" + suffix] = part_report(index, val, pv, country_prior, table=not suffix)
        report["test" + suffix] = part_report(index, test, pt, country_prior, table=not suffix)
        report["test_yosshstd" + suffix] = subset_metrics(index, [s for s, m in zip(test, spread, strict=True) if m],
                                                          pt[spread])
    raw = {"temperature": 1.0, "log_adjust": calibrations[served]["log_adjust"]}
    report["val_uncalibrated"] = part_report(index, val, probs("val", raw), country_prior)
    return report


def evaluate_run(run: Path | str, out: Path | str | None = None, cfg_overrides: dict | None = None) -> dict:
    """Evaluate a run's best checkpoint on val/test; writes metrics.json, plots and report.html."""
    from training.checkpoint import load_trained
    from training.predict import split_log_probs
    from training.prepare import prepare

    model, cfg, state = load_trained(run, pretrained_backbone=False)
    if cfg_overrides:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **cfg_overrides})
    prep = prepare(cfg)
    lp = {split: split_log_probs(model, prep, cfg, split) for split in ("val", "test")}
    cals = fit_calibrations(prep.index, prep.ds, lp["val"], prep.log_adjust, prep.country_prior)
    served = "world" if "world" in cals else "none"
    report = full_report(prep.index, prep.ds, lp, cals, served, prep.country_prior)
    report.update({"backbone": cfg.backbone, "size": prep.spec.size, "best_epoch": state["best_epoch"],
                   "datalist_sha256": prep.ds.datalist_sha256})
    from training.tracking import Tracker

    tracker = Tracker(cfg, Path(run), job="evaluate")
    tracker.log(flat_metrics(report))
    served_test = calibrated_probs(prep.index, lp["test"], cals[served])
    write_report(report, prep.index, prep.ds, served_test, Path(out or Path(run) / "eval"), cfg, tracker)
    tracker.finish()
    return report


def flat_metrics(report: dict) -> dict:
    """The scalar headline numbers, flattened for tracking (val/test × all/game)."""
    out = {}
    for part in ("val", "test"):
        for view in ("all", "game"):
            out |= {f"{part}_{view}_{k}": v for k, v in report[part][view].items() if isinstance(v, int | float)}
    return out


def bundle_log_probs(bundle: Path | str, ds: Dataset, samples: list, threads: int = 2) -> np.ndarray:
    """Per-image pooled cell log-probabilities from the exported ONNX graph, as the companion pools them
    (before the bundle's calibration, which `full_report` applies as the companion does)."""
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
        out.append(pooled_log_probs(logits, np.zeros(len(x), int), 1)[0])
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
    pred = [index.country_codes[i] for i in index.country_probs(probs).argmax(axis=1)]
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


def error_map_png(index: CellIndex, ds: Dataset, probs: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.geo import predict_points

    test = ds.split("test")
    plat, plng = predict_points(index, probs)
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


def reliability_png(report: dict, path: Path) -> Path:
    """Reliability diagram of the top country (world validation, game-weighted and not; test beside)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--", label="perfectly calibrated")
    series = [("val_uncalibrated", "game", "val, game-weighted, uncalibrated (T = 1)", "#d62728"),
              ("val", "game", "val, game-weighted, served", "#1f77b4"),
              ("val", "all", "val, all images, served", "#2ca02c"),
              ("test", "game", "test, game-weighted, served", "#9467bd")]
    for part, view, label, color in series:
        m = report[part][view]
        bins = m.get("reliability", [])
        if bins:
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color=color, ms=4,
                    label=f"{label}: ECE {m['ece']:.3f}")
    ax.set_xlabel("shown probability of the top country")
    ax.set_ylabel("how often it is right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Reliability of the top country")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _png_tag(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" style="max-width:100%">'


SUMMARY_KEYS = ["n", "n_eff", "country_top1", "country_top3", "country_top5", "country_balanced_acc", "region_top1",
                "region_top5", "cell_top1", "cell_top5", "median_km", "mean_km", "within_25km", "within_200km",
                "within_750km", "within_2500km", "geoguessr_score", "mean_confidence", "ece"]


def fmt(key: str, v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if key == "n":
        return str(int(v))
    if key.endswith("_km") or key in ("geoguessr_score", "n_eff"):
        return f"{v:.0f}"
    if key == "ece":
        return f"{v:.3f}"
    return f"{100 * v:.1f}%"


def summary_columns(report: dict) -> list[tuple[str, dict]]:
    cols = [("val, game-weighted", report["val"]["game"]), ("val, all", report["val"]["all"]),
            ("val, macro over sources", report["val"]["macro_source"]),
            ("test, game-weighted", report["test"]["game"]), ("test, all", report["test"]["all"]),
            ("test, yosshstd", report["test_yosshstd"])]
    return cols


def write_report(report: dict, index: CellIndex, ds: Dataset, test_probs: np.ndarray, out: Path,
                 cfg: TrainConfig | None = None, tracker=None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    pngs = {"confusion": confusion_png(index, ds, test_probs, out / "confusion.png"),
            "error_map": error_map_png(index, ds, test_probs, out / "error_map.png"),
            "reliability": reliability_png(report, out / "reliability.png")}
    cols = summary_columns(report)
    rows = "".join(f"<tr><td>{k}</td>" + "".join(f"<td>{fmt(k, m.get(k))}</td>" for _, m in cols) + "</tr>"
                   for k in SUMMARY_KEYS)
    heads = "".join(f"<th>{html.escape(c)}</th>" for c, _ in cols)
    sources = "".join(
        f"<tr><td>{html.escape(src)}</td><td>{m['n']}</td>" + "".join(
            f"<td>{fmt(k, m[k])}</td>" for k in ("country_top1", "country_top5", "median_km", "geoguessr_score", "ece"))
        + "</tr>" for src, m in report["val"]["per_source"].items())
    countries = "".join(
        f"<tr><td>{html.escape(r['country'])}</td><td>{r['n']}</td><td>{100 * r['top1']:.0f}%</td>"
        f"<td>{r['median_km']:.0f}</td><td>{html.escape(r['predicted_as'])}</td></tr>"
        for r in report["val"]["all"]["per_country"])
    cal = ", ".join(f"{k}: T = {v['temperature']:.2f}" for k, v in report["calibrations"].items())
    page = f"""<!doctype html><meta charset="utf-8"><title>Lost &amp; Found evaluation</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}td,th{{padding:2px 8px;text-align:right}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style>
<h1>Evaluation: {html.escape(str(report.get('backbone', '')))}</h1>
<p>data-list {html.escape(str(report.get('datalist_sha256', ''))[:16])}…; served prior <b>{html.escape(report['prior'])}</b>;
temperatures fitted on val ({html.escape(cal)}). Location-disjoint splits; game-weighted = images re-weighted to the
GeoGuessr World map's country mix. The pin maximizes the expected score.</p>
<table><tr><th>metric</th>{heads}</tr>{rows}</table>
<h2>Calibration</h2>{_png_tag(pngs['reliability'])}
<h2>Per source (val)</h2><table><tr><th>source</th><th>n</th><th>country@1</th><th>country@5</th><th>median km</th>
<th>score</th><th>ECE</th></tr>{sources}</table>
<h2>Per country (val)</h2><table><tr><th>country</th><th>n</th><th>top-1</th><th>median km</th>
<th>most often predicted as</th></tr>{countries}</table>
<h2>Confusion (test)</h2>{_png_tag(pngs['confusion'])}<h2>Errors (test)</h2>{_png_tag(pngs['error_map'])}
<h2>Config</h2><pre>{html.escape(json.dumps(cfg.to_dict() if cfg else {}, indent=1))}</pre>"""
    (out / "report.html").write_text(page, encoding="utf-8")
    if tracker is not None:
        tracker.images(pngs)
    return out / "report.html"
