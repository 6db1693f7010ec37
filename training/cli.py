"""Command line: each subcommand validates its inputs first; exit codes are runtime.cli's table
(bad input 2, a failure 1, each with a one-line message)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.cli import run_command


def _train_overrides(args) -> dict:
    keys = ("manifest", "backbone", "weights", "size", "epochs", "out", "tau_km", "seed", "wandb", "max_steps")
    d = {k: getattr(args, k, None) for k in keys}
    if getattr(args, "finetune", False):
        d["frozen"] = False
    if getattr(args, "no_resume", False):
        d["resume"] = False
    return d


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON config (TrainConfig fields, or a default config's 'train' part)")
    p.add_argument("--manifest", help="dataprep's final manifest.jsonl")
    p.add_argument("--backbone", help="timm model name")
    p.add_argument("--weights", help="auto (offline packages) | hub | none | path to .pth")
    p.add_argument("--size", type=int, help="input side in px")
    p.add_argument("--epochs", type=int)
    p.add_argument("--tau-km", dest="tau_km", type=float, help="label smoothing temperature")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="run folder")
    p.add_argument("--wandb", choices=["offline", "online", "disabled"])
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.add_argument("--finetune", action="store_true", help="train the backbone too (default: frozen features)")
    p.add_argument("--no-resume", action="store_true", help="start over even if the run folder has last.pt")


def cmd_train(args) -> int:
    from training.config import load_train_config
    from training.train import train

    cfg = load_train_config(args.config, _train_overrides(args))
    run = train(cfg)
    print(f"trained: {run}")
    return 0


def cmd_evaluate(args) -> int:
    from training.evaluate import evaluate_run

    report = evaluate_run(args.run, args.out)
    rows = [(f"{p} {v}", report[p][v]) for p in ("val", "test") for v in ("game", "all")]
    for label, m in rows + [("test yosshstd", report["test_yosshstd"])]:
        print(f"{label:14s} n={m['n']:4d} country@1 {m['country_top1']:.3f} @5 {m['country_top5']:.3f} "
              f"median {m['median_km']:.0f} km score {m['geoguessr_score']:.0f} ECE {m['ece']:.3f}")
    print(f"report: {Path(args.out or Path(args.run) / 'eval') / 'report.html'}")
    return 0


def cmd_export(args) -> int:
    from training.checkpoint import load_trained
    from training.config import TrainConfig
    from training.data import load_dataset
    from training.export import bundle_size_mb, export_bundle

    _, cfg, _ = load_trained(args.run, pretrained_backbone=False)
    cfg = TrainConfig.from_dict({**cfg.to_dict(), **({"manifest": args.manifest} if args.manifest else {})})
    ds = load_dataset(cfg.manifest, cfg.cells, cfg.datalist_sha256)
    from training.evaluate import fit_calibrations
    from training.predict import split_log_probs
    from training.prepare import prepare

    prep = prepare(cfg)
    model, _, _ = load_trained(args.run, pretrained_backbone=False)
    cals = fit_calibrations(prep.index, ds, split_log_probs(model, prep, cfg, "val"), prep.log_adjust,
                            prep.country_prior)
    out = export_bundle(args.run, ds, args.out, quantize=args.quantize, calibrations=cals)
    print(f"exported {out} ({bundle_size_mb(out):.1f} MB)")
    return 0


def cmd_default(args) -> int:
    from training.config import DefaultConfig
    from training.default import build_default

    cfg = DefaultConfig.load(args.config)
    report = build_default(cfg, retrain=args.retrain)
    v, t = report["val"]["game"], report["test"]["game"]
    print(f"default bundle: {cfg.bundle} ({report['bundle_mb']:.1f} MB); game-weighted val country@1 "
          f"{v['country_top1']:.3f} @5 {v['country_top5']:.3f} median {v['median_km']:.0f} km score "
          f"{v['geoguessr_score']:.0f} ECE {v['ece']:.3f}; test country@1 {t['country_top1']:.3f}; "
          f"report {cfg.report}/report.html")
    return 0


def cmd_compare(args) -> int:
    from training.compare import compare

    compare(args.config, args.out)
    return 0


def cmd_sweep(args) -> int:
    from training.sweep import sweep

    sweep(args.config, json.loads(args.overrides), [float(m) for m in args.mixes.split(",")], args.out)
    return 0


def cmd_baseline(args) -> int:
    from training.baseline import logistic_baseline

    report = logistic_baseline(args.config, args.c, "balanced" if args.balanced else None)
    for part, m in report.items():
        if m["n"]:
            print(f"{part:14s} n={m['n']:4d} country@1 {m['country_top1']:.3f} @5 {m['country_top5']:.3f} "
                  f"bal {m['country_balanced_acc']:.3f}")
    print(json.dumps(report))
    return 0


def cmd_weights(args) -> int:
    from training.backbones import input_defaults
    from training.models import create_backbone

    for name in args.backbones:
        model = create_backbone(name, args.weights, input_defaults(name)["size"])
        print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
              f"{model.num_features} features, weights={args.weights}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train", help="train a geocell head (or fine-tune) on dataprep's manifest")
    _add_train_args(p)
    p.set_defaults(fn=cmd_train)
    p = sub.add_parser("evaluate", help="val/test metrics, plots and report.html of a run")
    p.add_argument("run", help="run folder (holds best.pt)")
    p.add_argument("--out", help="report folder (default: <run>/eval)")
    p.set_defaults(fn=cmd_evaluate)
    p = sub.add_parser("export", help="write a model bundle (ONNX + bundle.json + cells.geojson)")
    p.add_argument("run")
    p.add_argument("--out", required=True, help="bundle folder to write (replaced atomically)")
    p.add_argument("--manifest", help="override the run's manifest path")
    p.add_argument("--quantize", action="store_true", help="int8 dynamic quantization")
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("default", help="train + evaluate + export the companion's default bundle")
    p.add_argument("--config", default="training/configs/default.json")
    p.add_argument("--retrain", action="store_true", help="discard the previous run's checkpoints")
    p.set_defaults(fn=cmd_default)
    p = sub.add_parser("compare", help="frozen-feature heads for several backbones: val/test metrics + latency")
    p.add_argument("--config", default="training/configs/compare.json")
    p.add_argument("--out", default="work/reports/compare")
    p.set_defaults(fn=cmd_compare)
    p = sub.add_parser("sweep", help="head settings on validation only: one JSON line of val metrics per setting")
    p.add_argument("overrides", help='JSON list of train-config overrides, e.g. \'[{"tau_km": 150}]\'')
    p.add_argument("--config", default="training/configs/default.json")
    p.add_argument("--mixes", default="0,0.25,0.5,0.75", help="country-head mix weights to score")
    p.add_argument("--out", default="work/runs/sweep")
    p.set_defaults(fn=cmd_sweep)
    p = sub.add_parser("baseline", help="the floor: logistic-regression country head on the same features/splits")
    p.add_argument("--config", default="training/configs/default.json")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 strength")
    p.add_argument("--balanced", action="store_true", help="class_weight='balanced'")
    p.set_defaults(fn=cmd_baseline)
    p = sub.add_parser("weights", help="resolve and load pretrained backbone weights (offline check)")
    p.add_argument("backbones", nargs="+")
    p.add_argument("--weights", default="auto")
    p.set_defaults(fn=cmd_weights)
    args = parser.parse_args(argv)
    return run_command(lambda: args.fn(args))
