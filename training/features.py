"""Frozen-backbone features, computed once and cached (heads then train in seconds on a CPU).

A cache is two files under the features folder:
    <backbone>-<size>.npy    float32 [tiles, D]: one row per square tile (runtime.preprocess)
    <backbone>-<size>.json   {"backbone", "size", "weights", "ids": [...], "offsets": [...]}
It is reused when it covers the requested images with the same weights setting, else recomputed.
Image i's tiles are rows offsets[i]:offsets[i+1]; the tiles are exactly what the companion feeds
the exported model, so a head trained here sees what it will see in the game.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from runtime.preprocess import InputSpec, normalize, tiles_uint8
from training.backbones import input_defaults
from training.models import create_backbone


@dataclass
class FeatureCache:
    features: np.ndarray        # [tiles, D]
    ids: list[str]
    offsets: np.ndarray         # [images + 1]
    weights: str = "auto"       # the weights setting the features were computed with

    def rows(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tile rows of the given images and, per row, the position of its image in `ids`."""
        where = {i: n for n, i in enumerate(self.ids)}
        missing = [i for i in ids if i not in where]
        if missing:
            raise KeyError(f"{len(missing)} images have no cached features, e.g. {missing[:3]}")
        idx = [np.arange(self.offsets[where[i]], self.offsets[where[i] + 1]) for i in ids]
        owner = np.concatenate([np.full(len(r), n) for n, r in enumerate(idx)])
        return np.concatenate(idx), owner


def cache_paths(folder: Path, backbone: str, size: int) -> tuple[Path, Path]:
    stem = Path(folder) / f"{backbone}-{size}"
    return stem.with_suffix(".npy"), stem.with_suffix(".json")


def load_cache(folder: Path, backbone: str, size: int) -> FeatureCache | None:
    npy, meta = cache_paths(folder, backbone, size)
    if not (npy.is_file() and meta.is_file()):
        return None
    m = json.loads(meta.read_text())
    return FeatureCache(np.load(npy, mmap_mode="r"), m["ids"], np.asarray(m["offsets"]), m.get("weights", "auto"))


def covers(cached: FeatureCache | None, ids: Sequence[str], weights: str) -> bool:
    """Whether a cache holds every one of `ids`, computed with these weights (features of other
    weights, e.g. a random init, must never stand in)."""
    return cached is not None and cached.weights == weights and set(ids) <= set(cached.ids)


def extract(
    images: Sequence[tuple[str, Path]],
    backbone: str,
    folder: Path,
    weights: str = "auto",
    size: int | None = None,
    batch_tiles: int = 32,
    reuse: bool = True,
    read_tiles: Callable[[str], np.ndarray] | None = None,
) -> FeatureCache:
    """Features for every (id, path) image; reuses a cache that already covers them all.

    `read_tiles` (dataprep's packed cache) gives an image's tiles without decoding its JPEG.
    """
    defaults = input_defaults(backbone)
    size = size or defaults["size"]
    if reuse:
        cached = load_cache(folder, backbone, size)
        if covers(cached, [i for i, _ in images], weights):
            return cached
    spec = InputSpec(size=size, mean=defaults["mean"], std=defaults["std"])
    model = create_backbone(backbone, weights, size).eval()
    feats: list[np.ndarray] = []
    offsets = [0]
    pending: list[np.ndarray] = []

    def flush():
        if pending:
            x = torch.from_numpy(normalize(np.concatenate(pending), spec))
            with torch.inference_mode():
                feats.append(model(x).float().numpy())
            pending.clear()

    for image_id, path in tqdm(images, desc=f"features {backbone}-{size}", unit="img", mininterval=5):
        tiles = read_tiles(image_id) if read_tiles else tiles_uint8(Image.open(path), size)
        pending.append(tiles)
        offsets.append(offsets[-1] + len(tiles))
        if sum(len(p) for p in pending) >= batch_tiles:
            flush()
    flush()
    cache = FeatureCache(np.concatenate(feats), [i for i, _ in images], np.asarray(offsets), weights)
    npy, meta = cache_paths(folder, backbone, size)
    npy.parent.mkdir(parents=True, exist_ok=True)
    np.save(npy.with_suffix(".tmp.npy"), cache.features)
    npy.with_suffix(".tmp.npy").replace(npy)
    meta.write_text(json.dumps({"backbone": backbone, "size": size, "weights": weights,
                                "ids": cache.ids, "offsets": offsets}))
    return cache
