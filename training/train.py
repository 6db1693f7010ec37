"""`train`: fit a geocell head (frozen backbone, cached features) or fine-tune backbone + head.

AdamW, linear warm-up then cosine decay, early stopping on a validation metric, `last.pt` every
epoch (resume) and `best.pt` at each improvement. Runs unchanged under
`torchrun --nproc_per_node N`: DDP (gloo on CPU, NCCL on GPU), each rank a shard of every batch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.batches import FeatureBatches, StageBatches, TileBatches
from training.checkpoint import atomic_save, config_changes, finished, load_trained
from training.config import TrainConfig
from training.distributed import check_ranks_agree, device, init_distributed, rank_world, seed_everything
from training.errors import ConfigError
from training.models import GeoModel, Head, Parts, build_model, input_spec
from training.predict import selection_metrics, split_log_probs
from training.prepare import Prepared, cell_countries, prepare, sample_weights, targets_and_weights
from training.stages import Top
from training.tracking import Tracker


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    warm = max(1, cfg.warmup_epochs * steps_per_epoch)
    total = max(warm + 1, cfg.epochs * steps_per_epoch)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / (total - warm))))

    return f


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

    targets_of = (targets, weights, country_targets, country_weights)
    if cfg.frozen:
        rows, owner = prep.cache.rows([s.id for s in train_samples])
        batches = FeatureBatches(prep.cache.features[rows], owner, targets_of)
        model = GeoModel(nn.Identity(), Head(batches.x.shape[1], len(ds.cells), cfg.head, cell_countries(ds)))
        model.head.feature_mean.copy_(batches.x.mean(0))
        model.head.feature_std.copy_(batches.x.std(0) + 1e-6)
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
        batches = StageBatches(prep.stages, tiles, owner, targets_of)
        params = [{"params": top.parameters(), "lr": cfg.backbone_lr},
                  {"params": model.head.parameters(), "lr": cfg.lr}]
    elif not cfg.frozen:
        batches = TileBatches(ds, train_samples, targets_of, prep.spec, cfg.augment, prep.read_tiles)
        params = [{"params": model.backbone.parameters(), "lr": cfg.backbone_lr},
                  {"params": model.head.parameters(), "lr": cfg.lr}]
    n_items = batches.n_items

    per_rank_batch = max(1, cfg.batch_size // world)
    steps_per_epoch = max(1, math.ceil(n_items / (per_rank_batch * world)))
    dev = device()
    model.to(dev)   # in place: the parameter groups above stay the optimizer's
    opt = torch.optim.AdamW(params, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, steps_per_epoch))
    state = {"epoch": 0, "step": 0, "best": -math.inf, "best_epoch": -1, "history": []}
    if cfg.resume and (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        changed = config_changes(ck["config"], cfg.to_dict())
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

    while state["epoch"] < cfg.epochs and not finished(state, cfg):
        net.train()
        if not cfg.frozen:
            # BatchNorm keeps its running statistics: CPU-sized batches give noisy batch statistics, and a
            # warm-started head was fitted to features computed with the running ones
            for m in model.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        perm = torch.randperm(n_items, generator=gen)
        total, seen = 0.0, 0
        for b in tqdm(range(steps_per_epoch), desc=f"epoch {state['epoch']}", leave=False, disable=rank != 0 or cfg.frozen,
                      mininterval=10):
            chunk = perm[b * per_rank_batch * world:(b + 1) * per_rank_batch * world]
            if len(chunk) < world:
                # every rank must step, or DDP's gradient all-reduce waits forever for the idle one
                chunk = torch.cat([chunk, perm[:world - len(chunk)]])
            x, y, w, yc, wc = (t.to(dev, non_blocking=True) for t in batches.take(chunk[rank::world], gen))
            cell_logits, country_logits = net(x)
            loss = _soft_ce(cell_logits, y, w)
            if country_logits is not None:
                loss = loss + _soft_ce(country_logits, yc, wc)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            state["step"] += 1
            total += loss.item() * len(x)
            seen += len(x)
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
                atomic_save({"model": model.state_dict(), "config": cfg.to_dict(), "state": state,
                              "feature_dim": _head_in(model)}, out / "best.pt")
            atomic_save(ck, out / "last.pt")
            print(f"epoch {state['epoch']:3d} loss {row['train_loss']:.4f} world val (game-weighted) {cfg.select} "
                  f"{score:.4f} country@1 {val['country_top1']:.3f} @5 {val['country_top5']:.3f}"
                  f" median {val['median_km']:.0f} km ECE {val['ece']:.3f} (T {val['temperature']:.2f})"
                  f"{'  *' if improved else ''}", flush=True)
    if world > 1:
        check_ranks_agree(model, out, rank, world)
    tracker.finish({"best_" + cfg.select: state["best"], "best_epoch": state["best_epoch"]})
    return out


def _soft_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy against soft targets."""
    return (-(target * torch.log_softmax(logits, dim=1)).sum(1) * weight).sum() / weight.sum()


def _head_in(model: GeoModel) -> int:
    return int(model.head.feature_mean.shape[0])
