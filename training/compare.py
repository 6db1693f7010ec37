"""`compare`: the backbone choice, measured. For each backbone: a frozen-feature geocell head
trained with the same settings, its world-validation and test metrics (calibrated on val), and the CPU latency of
the whole exported graph (ONNX Runtime, batch 1, 2 threads), and every backbone after the first against
the first on the same val images (paired, bootstrap over places). Writes compare.json and compare.md.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from training.checkpoint import load_trained
from training.config import TrainConfig
from training.default import headline
from training.evaluate import calibrated_probs, fit_calibrations, full_report, game_weights, onnx_latency_ms
from training.export import export_onnx
from training.features import load_cache
from training.geo import image_outcomes, paired_difference
from training.models import GeoModel, Head, create_backbone, input_spec
from training.predict import split_log_probs
from training.prepare import cell_countries, prepare
from training.train import train

COLUMNS = [("country_top1", "country@1"), ("country_top5", "country@5"), ("country_balanced_acc", "balanced"),
           ("region_top1", "region@1"), ("cell_top1", "cell@1"), ("median_km", "median km"),
           ("within_750km", "≤750 km"), ("geoguessr_score", "score"), ("ece", "ECE")]
PAIRED = ("top1", "top5", "score")   # image_outcomes' keys compared against the first backbone


def _features_dir(cfg: TrainConfig, candidates: list[str]) -> str:
    """The first folder whose cache for this backbone exists (a full cache also covers a subset)."""
    size = input_spec(cfg).size
    for folder in candidates:
        if load_cache(Path(folder), cfg.backbone, size) is not None:
            return folder
    return candidates[0]


def graph_latency(cfg: TrainConfig, cell_country: list[int]) -> float:
    spec = input_spec(cfg)
    backbone = create_backbone(cfg.backbone, "none", spec.size)
    model = GeoModel(backbone, Head(backbone.num_features, len(cell_country), cfg.head, cell_country)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(model, spec.size, path)
        return onnx_latency_ms(path, spec.size)


def compare(config: Path | str, out: Path | str) -> dict:
    d = json.loads(Path(config).read_text(encoding="utf-8"))
    backbones = d.pop("backbones")
    feature_dirs = d.pop("features_dirs", ["work/features"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results, outcomes = {}, {}
    for name in backbones:
        cfg = TrainConfig.from_dict({**d.get("train", {}), "backbone": name, "out": str(out / "runs" / name)})
        cfg.features_dir = _features_dir(cfg, feature_dirs)
        prep = prepare(cfg)
        run = train(cfg, prep)
        model, _, state = load_trained(run, pretrained_backbone=False)
        lp = {s: split_log_probs(model, prep, cfg, s) for s in ("val", "test")}
        cals = fit_calibrations(prep.index, prep.ds, lp["val"], prep.log_adjust, prep.country_prior)
        served = "world" if "world" in cals else "none"
        report = full_report(prep.index, prep.ds, lp, cals, served, prep.country_prior)
        results[name] = {
            "size": prep.spec.size,
            "best_epoch": state["best_epoch"],
            "val": headline(report["val"])["game"],
            "test": headline(report["test"])["game"],
            "test_yosshstd": {k: v for k, v in report["test_yosshstd"].items() if isinstance(v, int | float)},
            "latency_ms": graph_latency(cfg, cell_countries(prep.ds)),
            "params_m": sum(p.numel() for p in create_backbone(name, "none", prep.spec.size).parameters()) / 1e6,
            "n_train": len(prep.ds.split("train")),
        }
        val = prep.ds.split("val")
        probs = calibrated_probs(prep.index, lp["val"], cals[served])
        outcomes[name] = image_outcomes(prep.index, probs, [s.lat for s in val], [s.lng for s in val],
                                        [s.country for s in val])
        if name != backbones[0]:
            first = outcomes[backbones[0]]
            w, places = game_weights(val, prep.country_prior), [s.location for s in val]
            results[name]["vs_first"] = {"against": backbones[0]} | {
                k: paired_difference(first[k], outcomes[name][k], w, places) for k in PAIRED}
        (out / "compare.json").write_text(json.dumps(results, indent=1))
        print(f"{name}: game-weighted val country@1 {results[name]['val']['country_top1']:.3f} "
              f"latency {results[name]['latency_ms']:.0f} ms", flush=True)
    (out / "compare.md").write_text(markdown_table(results), encoding="utf-8")
    print(markdown_table(results))
    return results


def paired_table(results: dict) -> str:
    rows = [(n, r["vs_first"]) for n, r in results.items() if "vs_first" in r]
    if not rows:
        return ""
    out = (f"\nAgainst {rows[0][1]['against']} on the same val images (game-weighted, B − A, 95% bootstrap "
           "interval over places):\n\n| backbone | country@1 | country@5 | score |\n|---|---|---|---|\n")
    for name, v in rows:
        pct = [f"{100 * v[k]['diff']:+.1f} [{100 * v[k]['ci95'][0]:+.1f}, {100 * v[k]['ci95'][1]:+.1f}]" for k in PAIRED[:2]]
        sc = v["score"]
        out += f"| {name} | {pct[0]} | {pct[1]} | {sc['diff']:+.0f} [{sc['ci95'][0]:+.0f}, {sc['ci95'][1]:+.0f}] |\n"
    return out


def _cell(key: str, v: float) -> str:
    if key == "ece":
        return f"{v:.3f}"
    return f"{v:.0f}" if key in ("median_km", "geoguessr_score") else f"{100 * v:.1f}"


def markdown_table(results: dict) -> str:
    head = "| backbone | input | params (M) | CPU ms/tile | split | " + " | ".join(c for _, c in COLUMNS) + " |\n"
    head += "|" + "---|" * (5 + len(COLUMNS)) + "\n"
    rows = []
    for name, r in results.items():
        for part, label in (("val", "val, game-weighted"), ("test", "test, game-weighted"),
                            ("test_yosshstd", "test yosshstd")):
            m = r[part]
            first = f"| {name} | {r['size']} | {r['params_m']:.1f} | {r['latency_ms']:.0f} |" if part == "val" \
                else "| | | | |"
            rows.append(first + f" {label} (n={m['n']}) | " + " | ".join(_cell(k, m[k]) for k, _ in COLUMNS) + " |")
    return head + "\n".join(rows) + "\n" + paired_table(results)
