"""A split's pooled cell log-probabilities, whichever way the model was trained (frozen features, stage
cache or whole images), pooled over tiles as the companion pools them; what early stopping sees."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training.batches import tile_logits
from training.config import TrainConfig
from training.distributed import run_module
from training.geo import pooled_log_probs
from training.models import GeoModel
from training.prepare import Prepared
from training.stages import Top


def split_log_probs(model: nn.Module, prep: Prepared, cfg: TrainConfig, split: str) -> np.ndarray:
    """Per-image pooled cell log-probabilities of a split (uncalibrated), tiles pooled as the companion pools them."""
    samples = prep.ds.split(split)
    head = model.head if isinstance(model, GeoModel) else model
    if cfg.frozen:
        rows, owner = prep.cache.rows([s.id for s in samples])
        head.eval()
        with torch.inference_mode():
            logits = run_module(head, np.asarray(prep.cache.features[rows], np.float32))
    elif prep.stages is not None:
        # view 0 of each tile is exactly the served tile: the trunk's output for it, then the trained top
        tiles, owner = prep.stages.tile_rows([s.id for s in samples])
        top = Top(model.backbone, cfg.cut).eval()
        head.eval()
        out = []
        with torch.inference_mode():
            for b in range(0, len(tiles), 256):
                acts = np.asarray(prep.stages.acts[prep.stages.rows(tiles[b:b + 256])], np.float32)
                out.append(run_module(nn.Sequential(top, head), acts))
        logits = np.concatenate(out) if out else np.zeros((0, len(prep.ds.cells)), np.float32)
    else:
        logits, owner = tile_logits(model, prep.ds, samples, prep.spec)
    return pooled_log_probs(logits, owner, len(samples))


def selection_metrics(prep: Prepared, log_probs: np.ndarray) -> dict:
    """What early stopping sees: the world validation, game-weighted, as the companion would serve this
    epoch's model (the game's prior applied, the country temperature fitted on val): an over-confident
    epoch's pins are judged after calibration, as the player would get them."""
    from runtime.posterior import calibrate
    from training.calibration import fit_temperature
    from training.evaluate import country_truth, game_weights, subset_metrics

    val = prep.ds.split("val")
    w = game_weights(val, prep.country_prior)
    t = fit_temperature(log_probs, prep.index, country_truth(prep.index, val), w, prep.log_adjust)
    probs = np.exp(calibrate(log_probs, t, prep.log_adjust, prep.index.cell_country))
    return subset_metrics(prep.index, val, probs, weights=w) | {"temperature": t}
