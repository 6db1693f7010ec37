"""One process or many (torchrun): seeding, ranks, the device, the process group, the ranks' agreement."""

from __future__ import annotations

import json
import os
import random
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from training.errors import ExportError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rank_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def device() -> torch.device:
    """The GPU when there is one (this rank's, under torchrun), else the CPU: the same code runs on both."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def init_distributed() -> None:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        # rank 0 may spend most of an hour extracting frozen features while the others wait at a barrier
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(hours=3))


def check_ranks_agree(model: nn.Module, out: Path, rank: int, world: int) -> None:
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


def run_module(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """module(x) on the training device, back as a NumPy array."""
    dev = next(iter(module.parameters()), torch.zeros(0)).device
    return module(torch.from_numpy(x).to(dev)).float().cpu().numpy()
