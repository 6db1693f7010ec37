"""`report`: an HTML page with PNG plots of a dataset folder written by `all`.

Plots: train records per country before/after balancing, a world map of the points (by split, over
the cells), the filter metrics' distributions with their thresholds, drop reasons per stage, and
thumbnails of dropped images.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from dataprep.drops import read_drops
from runtime.cli import BadInput
from runtime.records import read_manifest

PNG_META = {"Software": None}  # no version string in the files: re-runs give the same bytes


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported on use: slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    plt = _pyplot()
    fig.savefig(path, dpi=90, metadata=PNG_META, bbox_inches="tight")
    plt.close(fig)
    return path.name


def plot_countries(before: dict, after: dict, path: Path, top: int = 40) -> str:
    plt = _pyplot()
    order = sorted(before, key=lambda c: (-before[c], c))
    shown = order[:top]
    rest_b = sum(before[c] for c in order[top:])
    rest_a = sum(after.get(c, 0) for c in order[top:])
    labels = shown + ([f"{len(order) - top} others"] if len(order) > top else [])
    b = [before[c] for c in shown] + ([rest_b] if len(order) > top else [])
    a = [after.get(c, 0) for c in shown] + ([rest_a] if len(order) > top else [])
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(labels) + 1.2))
    y = np.arange(len(labels))
    ax.barh(y + 0.2, b, 0.4, label="before balancing", color="#bbbbbb")
    ax.barh(y - 0.2, a, 0.4, label="after balancing", color="#1f77b4")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("train records (log)")
    ax.legend(loc="lower right")
    ax.set_title("Train records per country")
    return _save(fig, path)


def plot_map(samples, cells_doc: dict | None, path: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 6))
    if cells_doc:
        for f in cells_doc["features"]:
            g = f["geometry"]
            polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]] if g["type"] == "Polygon" else []
            for poly in polys:
                ring = np.asarray(poly[0])
                ax.plot(ring[:, 0], ring[:, 1], lw=0.3, color="#999999")
    colors = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#d62728", None: "#555555"}
    for split, color in colors.items():
        pts = np.array([(s.lng, s.lat) for s in samples if s.split == split])
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=2, color=color, label=f"{split or 'no split'} ({len(pts)})")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 85)
    ax.set_aspect("equal")
    ax.legend(loc="lower left", markerscale=4)
    ax.set_title(f"{len(samples)} records" + (f", {len(cells_doc['features'])} cells" if cells_doc else ""))
    return _save(fig, path)


def plot_filters(metrics: dict, thresholds: dict, path: Path) -> str:
    plt = _pyplot()
    vals = np.array(list(metrics.values()), np.float64).reshape(-1, 2)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for ax, col, name, key in ((axes[0], 0, "colour std", "min_color_std"), (axes[1], 1, "Laplacian variance", "min_laplacian_var")):
        v = np.maximum(vals[:, col], 0.01)
        ax.hist(v, bins=np.logspace(-2, np.log10(v.max() * 1.1), 80), color="#1f77b4")
        ax.axvline(thresholds[key], color="#d62728", label=f"threshold {thresholds[key]:g}: "
                   f"{int((vals[:, col] < thresholds[key]).sum())} below")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(name)
        ax.legend()
    fig.suptitle(f"Filter metrics of {len(vals)} images")
    return _save(fig, path)


def reason_kind(reason: str) -> str:
    """Group drop reasons: numbers and ids stripped."""
    r = re.split(r"[:(]", reason)[0]
    return re.sub(r"[-\d.]+", "N", r).strip()


def plot_drops(drops, path: Path) -> str:
    plt = _pyplot()
    kinds = Counter(f"{d.stage}: {reason_kind(d.reason)}" for d in drops)
    fig, ax = plt.subplots(figsize=(9, 0.35 * max(len(kinds), 1) + 1.2))
    labels = sorted(kinds, key=lambda k: -kinds[k])
    ax.barh(range(len(labels)), [kinds[k] for k in labels], color="#d62728")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("records dropped")
    ax.set_title(f"{len(drops)} records dropped")
    return _save(fig, path)


def thumbnails(drops, dataset: Path, path: Path, n: int, side: int = 128) -> str | None:
    shown = []
    for d in drops:
        if len(shown) >= n:
            break
        if d.stage in ("balance",) or not d.image:
            continue
        try:
            with Image.open(dataset / d.image) as img:  # relative paths are the dataset folder's
                img.thumbnail((side, side))
                shown.append((d, img.convert("RGB")))
        except (OSError, ValueError):
            continue
    if not shown:
        return None
    plt = _pyplot()
    cols = min(6, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (d, img) in zip(axes.flat, shown, strict=False):
        ax.imshow(img)
        ax.set_title(f"{d.id[:16]}\n{d.reason[:34]}", fontsize=6)
    return _save(fig, path)


def write_report(dataset: Path, out: Path, thumbs: int = 24) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stats = json.loads((dataset / "stats.json").read_text(encoding="utf-8"))
    samples = list(read_manifest(dataset / "manifest.jsonl"))
    drops = read_drops(dataset / "drops.jsonl")
    cells_path = dataset / "cells.geojson"
    cells_doc = json.loads(cells_path.read_text(encoding="utf-8")) if cells_path.exists() else None
    figs = []
    bal = stats["stages"].get("balance", {}).get("countries")
    if bal and bal.get("before"):
        figs.append(("Countries before/after balancing", plot_countries(bal["before"], bal["after"], out / "countries.png")))
    figs.append(("Where the records are", plot_map(samples, cells_doc, out / "map.png")))
    metrics_file = next(iter(sorted(dataset.glob("*-filter.metrics.json"))), None)
    if metrics_file:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        if metrics:
            figs.append(("Filter metrics", plot_filters(metrics, stats["stages"]["filter"]["thresholds"], out / "filters.png")))
    if drops:
        figs.append(("Drop reasons", plot_drops(drops, out / "drops.png")))
        if thumbs:
            name = thumbnails(drops, dataset, out / "dropped.png", thumbs)
            if name:
                figs.append(("Dropped images (local report only: thumbnails are source pixels, never committed)", name))
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v['in']['records'] if v.get('in') else ''}</td><td>{v['out']['records']}</td>"
        f"<td>{v['dropped']}</td><td>{v['out']['countries']}</td><td>{v['out']['locations']}</td></tr>"
        for k, v in stats["stages"].items()
    )
    balance_html = ""
    if bal:
        balance_html = (f"<h2>Balancing</h2><p>kept {len(bal['kept'])} countries; dropped: {html.escape(', '.join(bal['dropped']) or 'none')}; "
                        f"capped: {html.escape(json.dumps(bal['capped']))}</p>")
    drop_rows = "".join(f"<tr><td>{html.escape(d.stage)}</td><td>{html.escape(d.id)}</td><td>{html.escape(d.reason)}</td></tr>"
                        for d in drops[:200])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>dataprep report: {html.escape(dataset.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 8px;text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>dataprep report: {html.escape(dataset.name)}</h1>
<h2>Stages</h2><table><tr><th>stage</th><th>in</th><th>out</th><th>dropped</th><th>countries</th><th>locations</th></tr>{rows}</table>
<p>Final: {json.dumps(stats.get('final', {}))}</p>{balance_html}
{''.join(f'<h2>{html.escape(t)}</h2><img src="{n}" alt="{html.escape(t)}">' for t, n in figs)}
<h2>Dropped records ({len(drops)}{', first 200' if len(drops) > 200 else ''})</h2>
<table><tr><th>stage</th><th>id</th><th>reason</th></tr>{drop_rows}</table></body></html>
"""
    (out / "report.html").write_text(page, encoding="utf-8")
    return out / "report.html"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset folder written by `all` (manifest.jsonl, stats.json, drops.jsonl, …)")
    p.add_argument("--out", default=None, help="report folder (default: <dataset>/report)")
    p.add_argument("--thumbnails", type=int, default=24, help="dropped images shown (0: none)")


def main(args: argparse.Namespace) -> int:
    dataset = Path(args.dataset)
    if not (dataset / "stats.json").exists():
        raise BadInput(f"{dataset}: no stats.json; run `python -m dataprep all` first")
    page = write_report(dataset, Path(args.out) if args.out else dataset / "report", args.thumbnails)
    print(f"report: {page}")
    return 0
