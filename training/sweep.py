"""Head settings chosen on validation: train one head per override set, print its val metrics.

The model card's head-settings tables come from this. Only validation is scored, so a sweep can
never tune on the test split.
"""

from __future__ import annotations

import json

from training.config import DefaultConfig, TrainConfig
from training.errors import ConfigError

REPORTED = ("country_top1", "country_top5", "country_balanced_acc", "region_top1", "cell_top1", "median_km",
            "geoguessr_score", "ece")


# Settings that change what `prepare` builds (the data or its features): not sweepable over one prepared dataset.
DATA_KEYS = {"manifest", "cells", "datalist_sha256", "backbone", "weights", "size", "features_dir",
             "views_per_location", "frozen"}


def sweep(config: str, overrides: list[dict], mixes: list[float], out: str = "work/runs/sweep") -> list[dict]:
    """Each override set (merged into the config's train section) → one trained head, scored on val.

    A head with a country head is scored at every `mixes` weight: the mix only changes the served output.
    """
    from training.checkpoint import load_trained
    from training.predict import selection_metrics, split_log_probs
    from training.prepare import prepare
    from training.train import train

    default = DefaultConfig.load(config)
    # the frozen head's settings: the warm-up's when the default fine-tunes from one
    base = (default.warmup or default.train).to_dict() | {"resume": False, "wandb": "disabled"}
    prep, rows = None, []
    for i, override in enumerate(overrides):
        merged = base | override | {"head": base["head"] | override.get("head", {}), "out": f"{out}-{i}"}
        cfg = TrainConfig.from_dict(merged)
        changed = DATA_KEYS & {k for k in override if override[k] != base.get(k)}
        if changed:
            raise ConfigError(f"override {i} changes {', '.join(sorted(changed))}: a sweep shares one dataset and "
                             "feature cache; run `python -m training train` for that instead")
        prep = prep or prepare(cfg)
        model, _, state = load_trained(train(cfg, prep), pretrained_backbone=False)
        for mix in mixes if cfg.head.country else [None]:
            if mix is not None:
                model.head.country_mix.fill_(mix)
            # the world validation, game-weighted, with the prior applied: what early stopping maximizes
            metrics = selection_metrics(prep, split_log_probs(model, prep, cfg, "val"))
            row = {"override": override, "mix": mix, "best_epoch": state["best_epoch"]}
            row |= {k: round(metrics[k], 4) for k in REPORTED}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows
