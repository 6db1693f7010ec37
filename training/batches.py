"""Fine-tuning's image path: tiles of the images (or of dataprep's packed cache), augmented, normalized."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from runtime.preprocess import InputSpec, normalize, tiles_uint8
from training.data import Dataset
from training.distributed import run_module


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
