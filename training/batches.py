"""The training loop's batches, one interface for the three ways a run trains: `take(idx, gen)` gives
(inputs, cell targets, cell weights, country targets, country weights) for the items `idx`.

    FeatureBatches  frozen backbone: rows of cached features, one per tile
    StageBatches    stage-cache fine-tuning: one of each tile's cached trunk activations (a view drawn per epoch)
    TileBatches     whole-backbone fine-tuning: a random tile of each image (or of dataprep's packed cache),
                    augmented and normalized

An image counts once in the loss, however many tiles it has: a tile row's weight is its image's over
its tile count.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from runtime.preprocess import InputSpec, normalize, tiles_uint8
from training.data import Dataset
from training.distributed import run_module

Targets = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]   # cell targets, weights, country targets, weights


def per_tile(owner: np.ndarray, targets: Targets) -> tuple[torch.Tensor, ...]:
    """Per-image targets and weights → per tile row (`owner`: the image of each row)."""
    y, w, yc, wc = targets
    tiles_per = np.bincount(owner, minlength=len(y))[owner]
    return (torch.from_numpy(y[owner]), torch.from_numpy(w[owner] / tiles_per),
            torch.from_numpy(yc[owner]), torch.from_numpy(wc[owner] / tiles_per))


class FeatureBatches:
    def __init__(self, features: np.ndarray, owner: np.ndarray, targets: Targets):
        self.x = torch.from_numpy(np.asarray(features, np.float32))
        self.y, self.w, self.yc, self.wc = per_tile(owner, targets)
        self.n_items = len(self.x)

    def take(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        return self.x[idx], self.y[idx], self.w[idx], self.yc[idx], self.wc[idx]


class StageBatches:
    def __init__(self, stages, tiles: np.ndarray, owner: np.ndarray, targets: Targets):
        self.stages, self.tiles = stages, tiles
        self.y, self.w, self.yc, self.wc = per_tile(owner, targets)
        self.n_items = len(tiles)

    def take(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        # one of the tile's cached views, drawn afresh every epoch: augmentation at no extra cost
        view = torch.randint(self.stages.views, (len(idx),), generator=gen).numpy()
        rows = self.stages.rows(self.tiles[idx.numpy()], view)
        x = torch.from_numpy(np.asarray(self.stages.acts[rows], np.float32))
        return x, self.y[idx], self.w[idx], self.yc[idx], self.wc[idx]


class TileBatches:
    def __init__(self, ds: Dataset, samples: list, targets: Targets, spec: InputSpec, augment: str,
                 read_tiles: Callable[[str], np.ndarray] | None = None):
        y, w, yc, wc = targets
        self.cells = y.shape[1]
        self.tiles = TileDataset(ds, samples, np.concatenate([y, yc], 1), np.stack([w, wc], 1), spec, augment,
                                 read_tiles)
        self.n_items = len(self.tiles)

    def take(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        x, y, w = (torch.stack(t) for t in zip(*(self.tiles[int(i)] for i in idx), strict=True))
        return x, y[:, :self.cells], w[:, 0], y[:, self.cells:], w[:, 1]


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
    raise AssertionError(kind)  # TrainConfig.augment is a Literal of the three


def tile_logits(model: nn.Module, ds: Dataset, samples: list, spec: InputSpec, batch: int = 32) -> tuple:
    """Logits for every tile of every sample (fine-tuning's validation), owner index per tile row."""
    out, owner, pending, pending_owner = [], [], [], []
    model.eval()

    def flush():
        if pending:
            with torch.inference_mode():
                out.append(run_module(model, normalize(np.concatenate(pending), spec)))
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
