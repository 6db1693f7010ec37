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

from companion.bundle import BundleMeta, InputMeta
from companion.posterior import CellIndex
from companion.preprocess import InputSpec, normalize, tiles_uint8
from dataprep.cache import tile_reader
from training.config import TrainConfig
from training.data import Dataset, load_dataset
from training.features import FeatureCache, extract
from training.geo import evaluate_probs, pooled_log_probs, smoothed_targets
from training.models import GeoModel, Head, Parts, backbone_defaults, create_backbone
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
RESUMABLE_CHANGES = {"resume", "epochs", "patience", "max_steps", "wandb", "out", "features_dir"}


def _config_changes(saved: dict, current: dict) -> list[str]:
    return sorted(k for k in saved.keys() | current.keys()
                  if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))


def rank_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def init_distributed() -> None:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        # rank 0 may spend most of an hour extracting frozen features while the others wait at a barrier
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(hours=3))


def input_spec(cfg: TrainConfig) -> InputSpec:
    d = backbone_defaults(cfg.backbone)
    return InputSpec(size=cfg.size or d["size"], mean=tuple(d["mean"]), std=tuple(d["std"]))


def bundle_meta(ds: Dataset, cfg: TrainConfig, spec: InputSpec, model_id: str, created: str) -> BundleMeta:
    return BundleMeta(
        model_id=model_id, created=created, backbone=cfg.backbone,
        input=InputMeta(size=spec.size, mean=spec.mean, std=spec.std),
        countries=ds.countries, regions=ds.regions, cells=ds.cells,
        datalist_sha256=ds.datalist_sha256, config=cfg.to_dict(),
    )


def cell_index(ds: Dataset) -> CellIndex:
    return CellIndex.from_meta(bundle_meta(ds, TrainConfig(), InputSpec(), "eval", ""))


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


def prepare(cfg: TrainConfig) -> Prepared:
    """Everything that can fail checked before training: backbone, weights, data-list, splits."""
    spec = input_spec(cfg)  # unknown backbone → error here
    ds = load_dataset(cfg.manifest, cfg.cells, cfg.datalist_sha256)
    read_tiles = tile_reader(ds.samples, ds.manifest, spec.size)  # before any subsetting: the cache's key
    if cfg.views_per_location:
        ds.samples = first_views(ds.samples, cfg.views_per_location)
    if cfg.select not in ("geoguessr_score", "country_top1", "country_balanced_acc", "cell_top1"):
        raise ValueError(f"select={cfg.select!r}: use geoguessr_score, country_top1, country_balanced_acc or cell_top1")
    rank, _ = rank_world()
    cache = None
    if cfg.frozen:
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
    return Prepared(ds, spec, cell_index(ds), cache, read_tiles)


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
    raise ValueError(f"augment={kind!r}: use none, mild or strong")


def tile_logits(model: nn.Module, ds: Dataset, samples: list, spec: InputSpec, batch: int = 32) -> tuple:
    """Logits for every tile of every sample (fine-tuning's validation), owner index per tile row."""
    out, owner, pending, pending_owner = [], [], [], []
    model.eval()

    def flush():
        if pending:
            with torch.inference_mode():
                out.append(model(torch.from_numpy(normalize(np.concatenate(pending), spec))).numpy())
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


def split_probs(model: nn.Module, prep: Prepared, cfg: TrainConfig, split: str) -> np.ndarray:
    """Per-image cell probabilities for a split, tiles pooled as the companion pools them."""
    samples = prep.ds.split(split)
    if cfg.frozen:
        rows, owner = prep.cache.rows([s.id for s in samples])
        head = model.head if isinstance(model, GeoModel) else model
        head.eval()
        with torch.inference_mode():
            logits = head(torch.from_numpy(np.asarray(prep.cache.features[rows], np.float32))).numpy()
    else:
        logits, owner = tile_logits(model, prep.ds, samples, prep.spec)
    return np.exp(pooled_log_probs(logits, owner, len(samples)))


def split_metrics(prep: Prepared, probs: np.ndarray, split: str, radius_km: float, table: bool = False) -> dict:
    samples = prep.ds.split(split)
    return evaluate_probs(prep.index, probs, [s.lat for s in samples], [s.lng for s in samples],
                          [s.country for s in samples], [s.adm1_code for s in samples],
                          np.array([s.cell for s in samples]), radius_km, with_table=table)


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
    cell_lat, cell_lng = ds.cell_latlng()
    targets = smoothed_targets([s.lat for s in train_samples], [s.lng for s in train_samples],
                               [s.cell for s in train_samples], cell_lat, cell_lng, cfg.tau_km)
    weights = sample_weights(ds, train_samples, cfg.balance)
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
                raise ValueError(f"init_head {cfg.init_head} was trained on {warm_cfg.backbone} features, not {cfg.backbone}")
            model.head.load_state_dict(warm.head.state_dict())
        loader_ds = TileDataset(ds, train_samples, np.concatenate([targets, country_targets], 1),
                                np.stack([weights, country_weights], 1), prep.spec, cfg.augment, prep.read_tiles)
        n_items = len(loader_ds)
        params = [{"params": model.backbone.parameters(), "lr": cfg.backbone_lr},
                  {"params": model.head.parameters(), "lr": cfg.lr}]

    per_rank_batch = max(1, cfg.batch_size // world)
    steps_per_epoch = max(1, math.ceil(n_items / (per_rank_batch * world)))
    opt = torch.optim.AdamW(params, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, steps_per_epoch))
    state = {"epoch": 0, "step": 0, "best": -math.inf, "best_epoch": -1, "history": []}
    if cfg.resume and (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        changed = _config_changes(ck["config"], cfg.to_dict())
        if changed:
            raise ValueError(f"{out / 'last.pt'} was trained with another config ({', '.join(changed)} differ): "
                             "pass --no-resume / --retrain, or choose another `out` folder")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        state = ck["state"]
        if rank == 0:
            print(f"resumed {out / 'last.pt'} at epoch {state['epoch']}")
    net = nn.parallel.DistributedDataParallel(Parts(model)) if world > 1 else Parts(model)
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
        for b in tqdm(batches, desc=f"epoch {state['epoch']}", leave=False, disable=rank != 0 or cfg.frozen):
            chunk = perm[b * per_rank_batch * world:(b + 1) * per_rank_batch * world]
            if len(chunk) < world:
                # every rank must step, or DDP's gradient all-reduce waits forever for the idle one
                chunk = torch.cat([chunk, perm[:world - len(chunk)]])
            idx = chunk[rank::world]
            if cfg.frozen:
                x, y, w, yc, wc = x_all[idx], y_all[idx], w_all[idx], yc_all[idx], wc_all[idx]
            else:
                items = [loader_ds[int(i)] for i in idx]
                x, y, w = (torch.stack(t) for t in zip(*items, strict=True))
                y, yc, w, wc = y[:, :len(ds.cells)], y[:, len(ds.cells):], w[:, 0], w[:, 1]
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
        probs = split_probs(model, prep, cfg, "val")
        val = split_metrics(prep, probs, "val", radius_km=0.0)
        score = val[cfg.select]
        row = {"epoch": state["epoch"], "train_loss": total / max(1, seen), **{f"val_{k}": v for k, v in val.items()}}
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
            print(f"epoch {state['epoch']:3d} loss {row['train_loss']:.4f} val {cfg.select} {score:.4f}"
                  f" country@1 {val['country_top1']:.3f} bal {val['country_balanced_acc']:.3f}"
                  f" median {val['median_km']:.0f} km{'  *' if improved else ''}", flush=True)
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
        raise RuntimeError(f"DDP ranks disagree on the weights: {prints}")
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
