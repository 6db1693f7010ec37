"""Everything a run needs, checked before it trains: the dataset, the input spec, the frozen features or
the stage cache, the game's prior, the loss's targets and weights."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.distributed as dist

from runtime.dataset import tile_reader
from runtime.posterior import CellIndex
from runtime.preprocess import InputSpec
from training.calibration import log_adjustment, train_prior
from training.config import TrainConfig
from training.data import DataError, Dataset, load_dataset, load_prior
from training.distributed import rank_world
from training.errors import ConfigError
from training.features import FeatureCache, extract
from training.geo import smoothed_targets
from training.models import create_backbone, input_spec
from training.stages import StageCache, build_stage_cache


def cell_index(ds: Dataset) -> CellIndex:
    return CellIndex.from_cells(ds.cells, [c.code for c in ds.countries], [r.code for r in ds.regions])


def sample_weights(ds: Dataset, train: list, power: float) -> np.ndarray:
    """Per-sample loss weight ∝ (train samples of its country)^-power, mean 1: with ~half the data
    in the US, unweighted training learns 'say US' first."""
    counts = Counter(s.country for s in train)
    w = np.array([counts[s.country] ** -power for s in train], np.float64)
    return (w / w.mean()).astype(np.float32)


def first_views(samples: list, k: int) -> list:
    """The first k samples (by id) of each location: fewer near-duplicate views when CPU time is short."""
    kept, seen = [], Counter()
    for s in sorted(samples, key=lambda s: s.id):
        if seen[s.location] < k:
            seen[s.location] += 1
            kept.append(s)
    return kept


@dataclass
class Prepared:
    ds: Dataset
    spec: InputSpec
    index: CellIndex
    cache: FeatureCache | None
    read_tiles: Callable[[str], np.ndarray] | None = None   # dataprep's packed cache, when built
    stages: StageCache | None = None                       # fine-tuning from a stage cache (cfg.cut)
    log_adjust: np.ndarray | None = None                   # log π_game − log π_train per cell; None: no prior
    country_prior: dict[str, float] | None = None          # the game's country mix (game-weighted metrics)


def targets_and_weights(ds: Dataset, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The train split's smoothed cell targets [N, C] and sample weights [N], as the loss sees them."""
    train = ds.split("train")
    cell_lat, cell_lng = ds.cell_latlng()
    targets = smoothed_targets([s.lat for s in train], [s.lng for s in train], [s.cell for s in train],
                               cell_lat, cell_lng, cfg.tau_km)
    return targets, sample_weights(ds, train, cfg.balance)


def game_prior(ds: Dataset, cfg: TrainConfig) -> tuple[np.ndarray | None, dict | None]:
    """(log π_game − log π_train per cell, the game's country mix) from dataprep's prior.json, or (None, None)."""
    doc = load_prior(ds.manifest)
    if doc is None:
        return None, None
    if len(doc["cells"]) != len(ds.cells):
        raise DataError(f"prior.json has {len(doc['cells'])} cells, the dataset {len(ds.cells)}: rebuild the dataset")
    targets, weights = targets_and_weights(ds, cfg)
    return log_adjustment(np.asarray(doc["cells"]), train_prior(targets, weights)), doc["countries"]


def prepare(cfg: TrainConfig) -> Prepared:
    """Everything that can fail checked before training: backbone, weights, data-list, splits."""
    spec = input_spec(cfg)  # unknown backbone → error here
    ds = load_dataset(cfg.manifest, cfg.cells, cfg.datalist_sha256)
    read_tiles = tile_reader(ds.manifest, spec.size)  # dataprep's published cache of this manifest
    if cfg.views_per_location:
        ds.samples = first_views(ds.samples, cfg.views_per_location)
    rank, _ = rank_world()
    cache, stages = None, None
    if cfg.cut is not None and cfg.frozen:
        raise ConfigError("cut is for fine-tuning: set frozen=false")
    if cfg.cut is not None:
        images = [(s.id, ds.image(s)) for s in ds.samples]

        def build() -> StageCache:
            return build_stage_cache(images, cfg.backbone, Path(cfg.stages_dir), cfg.cut, cfg.views, cfg.seed,
                                     cfg.weights, spec.size, read_tiles)

        stages = build() if rank == 0 else None
        if dist.is_initialized():
            dist.barrier()
            stages = stages or build()
    elif cfg.frozen:
        images = [(s.id, ds.image(s)) for s in ds.samples]
        if rank == 0:
            cache = extract(images, cfg.backbone, Path(cfg.features_dir), cfg.weights, spec.size,
                            read_tiles=read_tiles)
        if dist.is_initialized():
            dist.barrier()
        if rank != 0:
            cache = extract(images, cfg.backbone, Path(cfg.features_dir), cfg.weights, spec.size,
                            read_tiles=read_tiles)
    else:
        create_backbone(cfg.backbone, cfg.weights, spec.size)  # missing weights → error now
    log_adjust, country_prior = game_prior(ds, cfg)
    return Prepared(ds, spec, cell_index(ds), cache, read_tiles, stages, log_adjust, country_prior)


def cell_countries(ds: Dataset) -> list[int]:
    """Country index (into ds.countries) of every cell: the country head's classes."""
    index = {c.code: i for i, c in enumerate(ds.countries)}
    return [index[c.country] for c in ds.cells]
