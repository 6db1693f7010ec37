"""`train`: fit a geocell head (frozen backbone, cached features) or fine-tune backbone + head.

AdamW, linear warm-up then cosine decay, early stopping on a validation metric, `last.pt` every
epoch (resume) and `best.pt` at each improvement. Runs unchanged under
`torchrun --nproc_per_node N`: DDP (gloo on CPU, NCCL on GPU), each rank a shard of every batch.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch import nn
from tqdm import tqdm

from runtime.bundle import BundleMeta, Calibration, InputMeta
from runtime.dataset import tile_reader
from runtime.posterior import CellIndex
from runtime.preprocess import InputSpec, normalize, tiles_uint8
from training.backbones import input_defaults
from training.calibration import log_adjustment, train_prior
from training.config import TrainConfig
from training.data import DataError, Dataset, load_dataset, load_prior
from training.errors import ConfigError, ExportError
from training.features import FeatureCache, extract
from training.geo import pooled_log_probs, smoothed_targets
from training.models import GeoModel, Head, Parts, create_backbone
from training.stages import StageCache, Top, build_stage_cache
from training.tracking import Tracker


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _finished(state: dict, cfg: TrainConfig) -> bool:
    """Early-stopped or out of steps: checked before each epoch, so resuming a finished run trains nothing."""
    stalled = state["best_epoch"] >= 0 and state["epoch"] - state["best_epoch"] >= cfg.patience
    return stalled or bool(cfg.max_steps and state["step"] >= cfg.max_steps)


# Settings that may change between a run and its resumption without changing what is trained.
RESUMABLE_CHANGES = {"resume", "epochs", "patience", "max_steps", "wandb", "out", "features_dir", "stages_dir"}


# Settings a frozen-feature head never reads.
FINETUNE_ONLY = {"backbone_lr", "augment", "cut", "views", "stages_dir", "init_head"}


def _config_changes(saved: dict, current: dict) -> list[str]:
    ignored = RESUMABLE_CHANGES | (FINETUNE_ONLY if saved.get("frozen") and current.get("frozen") else set())
    return sorted(k for k in saved.keys() | current.keys() if k not in ignored and saved.get(k) != current.get(k))


def rank_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def device() -> torch.device:
    """The GPU when there is one (this rank's, under torchrun), else the CPU: the same code runs on both."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """module(x) on the training device, back as a NumPy array."""
    dev = next(iter(module.parameters()), torch.zeros(0)).device
    return module(torch.from_numpy(x).to(dev)).float().cpu().numpy()


def init_distributed() -> None:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        # rank 0 may spend most of an hour extracting frozen features while the others wait at a barrier
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(hours=3))


def input_spec(cfg: TrainConfig) -> InputSpec:
    d = input_defaults(cfg.backbone)
    return InputSpec(size=cfg.size or d["size"], mean=tuple(d["mean"]), std=tuple(d["std"]))


def bundle_meta(ds: Dataset, cfg: TrainConfig, spec: InputSpec, model_id: str, created: str,
                calibrations: dict[str, dict] | None = None, prior: str = "none") -> BundleMeta:
    cals = {name: Calibration(temperature=c["temperature"],
                              log_adjust=None if c["log_adjust"] is None else [round(float(v), 6) for v in c["log_adjust"]])
            for name, c in (calibrations or {"none": {"temperature": 1.0, "log_adjust": None}}).items()}
    return BundleMeta(
        model_id=model_id, created=created, backbone=cfg.backbone,
        input=InputMeta(size=spec.size, mean=spec.mean, std=spec.std),
        countries=ds.countries, regions=ds.regions, cells=ds.cells,
        datalist_sha256=ds.datalist_sha256, config=cfg.to_dict(), calibrations=cals, prior=prior,
    )


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
    if cfg.select not in ("geoguessr_score", "country_top1", "country_balanced_acc", "cell_top1"):
        raise ConfigError(f"select={cfg.select!r}: use geoguessr_score, country_top1, country_balanced_acc or cell_top1")
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


def build_model(cfg: TrainConfig, num_cells: int, feature_dim: int | None = None, pretrained: bool = True,
                cell_country: list[int] | None = None) -> GeoModel:
    spec = input_spec(cfg)
    backbone = create_backbone(cfg.backbone, cfg.weights if pretrained else "none", spec.size)
    dim = feature_dim or backbone.num_features
    return GeoModel(backbone, Head(dim, num_cells, cfg.head, cell_country))


# --- the two data paths: cached features (frozen) or image tiles (fine-tuning) ---------------------------


class TileDataset(torch.utils.data.Dataset):
    """One random tile per image per epoch, mildly augmented (no flips: driving side is a clue)."""

    def __init__(self, ds: Dataset, samples: list, targets: np.ndarray, weights: np.ndarray, spec: InputSpec,
                 augment: str, read_tiles: Callable[[str], np.ndarray] | None = None):
        self.ds, self.samples, self.targets, self.weights, self.spec = ds, samples, targets, weights, spec
        self.augment = _augmentation(augment, spec.size)
        self.read_tiles = read_tiles

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        tiles = self.read_tiles(s.id) if self.read_tiles else tiles_uint8(Image.open(self.ds.image(s)), self.spec.size)
        tile = tiles[np.random.randint(len(tiles))]
        if self.augment is not None:
            tile = np.asarray(self.augment(Image.fromarray(tile)))
        x = torch.from_numpy(normalize(tile[None], self.spec)[0])
        return x, torch.from_numpy(self.targets[i]), torch.tensor(self.weights[i])


def _augmentation(kind: str, size: int):
    from torchvision import transforms as T

    if kind == "none":
        return None
    if kind == "mild":
        return T.Compose([T.RandomResizedCrop(size, scale=(0.7, 1.0), ratio=(0.9, 1.1)),
                          T.ColorJitter(0.15, 0.15, 0.1)])
    if kind == "strong":
        return T.Compose([T.RandomResizedCrop(size, scale=(0.35, 1.0)), T.ColorJitter(0.4, 0.4, 0.3, 0.05),
                          T.RandomGrayscale(0.1)])
    raise ConfigError(f"augment={kind!r}: use none, mild or strong")


def tile_logits(model: nn.Module, ds: Dataset, samples: list, spec: InputSpec, batch: int = 32) -> tuple:
    """Logits for every tile of every sample (fine-tuning's validation), owner index per tile row."""
    out, owner, pending, pending_owner = [], [], [], []
    model.eval()

    def flush():
        if pending:
            with torch.inference_mode():
                out.append(_run(model, normalize(np.concatenate(pending), spec)))
            owner.extend(pending_owner)
            pending.clear()
            pending_owner.clear()

    for n, s in enumerate(samples):
        tiles = tiles_uint8(Image.open(ds.image(s)), spec.size)
        pending.append(tiles)
        pending_owner.extend([n] * len(tiles))
        if len(pending_owner) >= batch:
            flush()
    flush()
    return np.concatenate(out), np.asarray(owner)


# --- training ------------------------------------------------------------------------------------------


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    warm = max(1, cfg.warmup_epochs * steps_per_epoch)
    total = max(warm + 1, cfg.epochs * steps_per_epoch)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / (total - warm))))

    return f


def split_log_probs(model: nn.Module, prep: Prepared, cfg: TrainConfig, split: str) -> np.ndarray:
    """Per-image pooled cell log-probabilities of a split (uncalibrated), tiles pooled as the companion pools them."""
    samples = prep.ds.split(split)
    head = model.head if isinstance(model, GeoModel) else model
    if cfg.frozen:
        rows, owner = prep.cache.rows([s.id for s in samples])
        head.eval()
        with torch.inference_mode():
            logits = _run(head, np.asarray(prep.cache.features[rows], np.float32))
    elif prep.stages is not None:
        # view 0 of each tile is exactly the served tile: the trunk's output for it, then the trained top
        tiles, owner = prep.stages.tile_rows([s.id for s in samples])
        top = Top(model.backbone, cfg.cut).eval()
        head.eval()
        out = []
        with torch.inference_mode():
            for b in range(0, len(tiles), 256):
                acts = np.asarray(prep.stages.acts[prep.stages.rows(tiles[b:b + 256])], np.float32)
                out.append(_run(nn.Sequential(top, head), acts))
        logits = np.concatenate(out) if out else np.zeros((0, len(prep.ds.cells)), np.float32)
    else:
        logits, owner = tile_logits(model, prep.ds, samples, prep.spec)
    return pooled_log_probs(logits, owner, len(samples))


def split_probs(model: nn.Module, prep: Prepared, cfg: TrainConfig, split: str) -> np.ndarray:
    """Per-image cell probabilities of a split as the model outputs them (no temperature, no prior)."""
    return np.exp(split_log_probs(model, prep, cfg, split))


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


class TopParts(nn.Module):
    """Stage-cache fine-tuning: trunk activations → (cell logits, country logits or None)."""

    def __init__(self, top: nn.Module, head: Head):
        super().__init__()
        self.top, self.head = top, head

    def forward(self, acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.head.parts(self.top(acts))


def train(cfg: TrainConfig, prep: Prepared | None = None) -> Path:
    """Train as configured; returns the run folder (best.pt, last.pt, config)."""
    init_distributed()
    rank, world = rank_world()
    seed_everything(cfg.seed)
    prep = prep or prepare(cfg)
    ds = prep.ds
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_samples = ds.split("train")
    targets, weights = targets_and_weights(ds, cfg)
    # the country head's target: the smoothed cell target summed per country; its own class weighting
    country_targets = targets @ np.eye(len(ds.countries), dtype=np.float32)[cell_countries(ds)]
    country_weights = sample_weights(ds, train_samples, cfg.balance if cfg.country_balance is None
                                     else cfg.country_balance)

    if cfg.frozen:
        rows, owner = prep.cache.rows([s.id for s in train_samples])
        x_all = torch.from_numpy(np.asarray(prep.cache.features[rows], np.float32))
        tiles_per = np.bincount(owner, minlength=len(train_samples))
        y_all = torch.from_numpy(targets[owner])
        w_all = torch.from_numpy(weights[owner] / tiles_per[owner])  # an image counts once, whatever its tiles
        yc_all = torch.from_numpy(country_targets[owner])
        wc_all = torch.from_numpy(country_weights[owner] / tiles_per[owner])
        model = GeoModel(nn.Identity(), Head(x_all.shape[1], len(ds.cells), cfg.head, cell_countries(ds)))
        model.head.feature_mean.copy_(x_all.mean(0))
        model.head.feature_std.copy_(x_all.std(0) + 1e-6)
        n_items = len(x_all)
        params = [{"params": model.head.parameters(), "lr": cfg.lr}]
    else:
        model = build_model(cfg, len(ds.cells), cell_country=cell_countries(ds))
        if cfg.init_head:
            # a head already fitted to the frozen features: fine-tuning then adapts the backbone from a good
            # start instead of spending its few CPU epochs fitting a random head
            warm, warm_cfg, _ = load_trained(cfg.init_head, pretrained_backbone=False)
            if (warm_cfg.backbone, input_spec(warm_cfg).size) != (cfg.backbone, prep.spec.size):
                raise ConfigError(f"init_head {cfg.init_head} was trained on {warm_cfg.backbone} features, not {cfg.backbone}")
            model.head.load_state_dict(warm.head.state_dict())
    if prep.stages is not None:
        top = Top(model.backbone, cfg.cut)
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        for p in top.parameters():
            p.requires_grad_(True)
        tiles, owner = prep.stages.tile_rows([s.id for s in train_samples])
        tiles_per = np.bincount(owner, minlength=len(train_samples))
        y_all, yc_all = torch.from_numpy(targets[owner]), torch.from_numpy(country_targets[owner])
        w_all = torch.from_numpy(weights[owner] / tiles_per[owner])
        wc_all = torch.from_numpy(country_weights[owner] / tiles_per[owner])
        n_items = len(tiles)
        params = [{"params": top.parameters(), "lr": cfg.backbone_lr},
                  {"params": model.head.parameters(), "lr": cfg.lr}]
    elif not cfg.frozen:
        loader_ds = TileDataset(ds, train_samples, np.concatenate([targets, country_targets], 1),
                                np.stack([weights, country_weights], 1), prep.spec, cfg.augment, prep.read_tiles)
        n_items = len(loader_ds)
        params = [{"params": model.backbone.parameters(), "lr": cfg.backbone_lr},
                  {"params": model.head.parameters(), "lr": cfg.lr}]

    per_rank_batch = max(1, cfg.batch_size // world)
    steps_per_epoch = max(1, math.ceil(n_items / (per_rank_batch * world)))
    dev = device()
    model.to(dev)   # in place: the parameter groups above stay the optimizer's
    opt = torch.optim.AdamW(params, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, steps_per_epoch))
    state = {"epoch": 0, "step": 0, "best": -math.inf, "best_epoch": -1, "history": []}
    if cfg.resume and (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        changed = _config_changes(ck["config"], cfg.to_dict())
        if changed:
            raise ConfigError(f"{out / 'last.pt'} was trained with another config ({', '.join(changed)} differ): "
                             "pass --no-resume / --retrain, or choose another `out` folder")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        state = ck["state"]
        if rank == 0:
            print(f"resumed {out / 'last.pt'} at epoch {state['epoch']}")
    parts = TopParts(top, model.head) if prep.stages is not None else Parts(model)
    ddp_devices = [dev.index] if dev.type == "cuda" else None
    net = nn.parallel.DistributedDataParallel(parts, device_ids=ddp_devices) if world > 1 else parts
    tracker = Tracker(cfg, out, enabled=rank == 0)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(state["epoch"]):
        torch.randperm(n_items, generator=gen)  # replay the permutations a resumed run skipped

    while state["epoch"] < cfg.epochs and not _finished(state, cfg):
        net.train()
        if not cfg.frozen:
            # BatchNorm keeps its running statistics: CPU-sized batches give noisy batch statistics, and a
            # warm-started head was fitted to features computed with the running ones
            for m in model.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        perm = torch.randperm(n_items, generator=gen)
        total, seen = 0.0, 0
        batches = range(steps_per_epoch)
        for b in tqdm(batches, desc=f"epoch {state['epoch']}", leave=False, disable=rank != 0 or cfg.frozen,
                      mininterval=10):
            chunk = perm[b * per_rank_batch * world:(b + 1) * per_rank_batch * world]
            if len(chunk) < world:
                # every rank must step, or DDP's gradient all-reduce waits forever for the idle one
                chunk = torch.cat([chunk, perm[:world - len(chunk)]])
            idx = chunk[rank::world]
            if cfg.frozen:
                x, y, w, yc, wc = x_all[idx], y_all[idx], w_all[idx], yc_all[idx], wc_all[idx]
            elif prep.stages is not None:
                # one of the tile's cached views, drawn afresh every epoch: augmentation at no extra cost
                view = torch.randint(prep.stages.views, (len(idx),), generator=gen).numpy()
                rows = prep.stages.rows(tiles[idx.numpy()], view)
                x = torch.from_numpy(np.asarray(prep.stages.acts[rows], np.float32))
                y, w, yc, wc = y_all[idx], w_all[idx], yc_all[idx], wc_all[idx]
            else:
                items = [loader_ds[int(i)] for i in idx]
                x, y, w = (torch.stack(t) for t in zip(*items, strict=True))
                y, yc, w, wc = y[:, :len(ds.cells)], y[:, len(ds.cells):], w[:, 0], w[:, 1]
            x, y, w, yc, wc = (t.to(dev, non_blocking=True) for t in (x, y, w, yc, wc))
            cell_logits, country_logits = net(x)
            loss = _soft_ce(cell_logits, y, w)
            if country_logits is not None:
                loss = loss + _soft_ce(country_logits, yc, wc)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            state["step"] += 1
            total += loss.item() * len(idx)
            seen += len(idx)
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                break
        state["epoch"] += 1
        val = selection_metrics(prep, split_log_probs(model, prep, cfg, "val"))
        score = val[cfg.select]
        row = {"epoch": state["epoch"], "train_loss": total / max(1, seen), **{f"val_{k}": v for k, v in val.items() if isinstance(v, int | float)}}
        state["history"].append(row)
        improved = score > state["best"]
        if improved:
            state["best"], state["best_epoch"] = score, state["epoch"]
        if rank == 0:
            tracker.log(row)
            ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                  "state": state, "config": cfg.to_dict(), "feature_dim": _head_in(model)}
            if improved:
                _atomic_save({"model": model.state_dict(), "config": cfg.to_dict(), "state": state,
                              "feature_dim": _head_in(model)}, out / "best.pt")
            _atomic_save(ck, out / "last.pt")
            print(f"epoch {state['epoch']:3d} loss {row['train_loss']:.4f} world val (game-weighted) {cfg.select} "
                  f"{score:.4f} country@1 {val['country_top1']:.3f} @5 {val['country_top5']:.3f}"
                  f" median {val['median_km']:.0f} km ECE {val['ece']:.3f} (T {val['temperature']:.2f})"
                  f"{'  *' if improved else ''}", flush=True)
    if world > 1:
        _check_ranks_agree(model, out, rank, world)
    tracker.finish({"best_" + cfg.select: state["best"], "best_epoch": state["best_epoch"]})
    return out


def _soft_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy against soft targets."""
    return (-(target * torch.log_softmax(logits, dim=1)).sum(1) * weight).sum() / weight.sum()


def _check_ranks_agree(model: nn.Module, out: Path, rank: int, world: int) -> None:
    """DDP must leave every rank with the same weights; gather a fingerprint from each and compare."""
    vec = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    mine = torch.stack([vec.sum(), (vec * vec).sum(), vec.abs().max()])
    everyone = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(everyone, mine)
    prints = [t.tolist() for t in everyone]
    if rank == 0:
        (out / "ranks.json").write_text(json.dumps({"world": world, "fingerprints": prints}))
    if any(p != prints[0] for p in prints):
        raise ExportError(f"DDP ranks disagree on the weights: {prints}")
    dist.barrier()


def _head_in(model: GeoModel) -> int:
    return int(model.head.feature_mean.shape[0])


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def load_trained(run: Path | str, pretrained_backbone: bool = True) -> tuple[GeoModel, TrainConfig, dict]:
    """The best checkpoint of a run as a full pixels → logits model (the frozen backbone re-attached)."""
    path = Path(run) / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train first")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = TrainConfig.from_dict(ck["config"])
    head_keys = sorted(k for k in ck["model"] if k.startswith("head.net.") and k.endswith(".weight"))
    num_cells = ck["model"][head_keys[-1]].shape[0]
    onehot = ck["model"].get("head.cell_country")
    cell_country = onehot.argmax(1).tolist() if onehot is not None else None
    model = build_model(cfg, num_cells, ck["feature_dim"], pretrained=pretrained_backbone and cfg.frozen,
                        cell_country=cell_country)
    if cfg.frozen:
        model.head.load_state_dict({k[len("head."):]: v for k, v in ck["model"].items() if k.startswith("head.")})
    else:
        model.load_state_dict(ck["model"])
    return model.eval(), cfg, ck["state"]
