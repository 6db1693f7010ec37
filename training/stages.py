"""Partial fine-tuning that fits 2 CPU cores: cache the activations at an intermediate stage once,
then train only the last stages and the head, for many epochs.

A timm EfficientNet-family backbone (EfficientNet-Lite, MobileNetV2: conv_stem, bn1, blocks, conv_head,
bn2, global_pool) is cut before `blocks[cut]`: the trunk stays at its pretrained weights, the top
(blocks[cut:], conv_head, bn2, pooling) trains. The trunk's output is computed once per tile for
`views` views: view 0 is the exact tile the companion feeds the model, views 1.. are random crops
with colour jitter (never flips: they swap the driving side and mirror text). Training draws one view
per tile per epoch, so augmentation costs nothing after the cache is built. The trained backbone is
the original one with its top replaced, so export and serving are unchanged.

Measured on 2 cores (tf_efficientnet_lite0, 224 px): the trunk to cut 5 is ~75% of a forward pass;
the top from cut 5 costs ~7 ms per tile forward + backward, against ~60 ms for the whole network.

A cache is two files under the stages folder:
    <key>.npy   float16 [tiles × views, C, H, W]: row = tile_row × views + view
    <key>.json  {"backbone", "size", "cut", "views", "seed", "weights", "ids", "offsets", "done"}
`done` counts the images written so far: an interrupted build resumes there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from runtime.preprocess import InputSpec, normalize, tiles_uint8
from training.backbones import input_defaults
from training.errors import ConfigError
from training.features import FeatureCache, cache_paths, covers, load_cache
from training.models import create_backbone

CHUNK_IMAGES = 128  # progress is saved after each chunk


class Trunk(nn.Module):
    def __init__(self, backbone: nn.Module, cut: int):
        super().__init__()
        self.stem = nn.Sequential(backbone.conv_stem, backbone.bn1)
        self.blocks = nn.Sequential(*backbone.blocks[:cut])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class Top(nn.Module):
    """The trainable part: shares its modules with the backbone, so training it trains the backbone."""

    def __init__(self, backbone: nn.Module, cut: int):
        super().__init__()
        self.blocks = nn.Sequential(*backbone.blocks[cut:])
        self.head = nn.Sequential(backbone.conv_head, backbone.bn2, backbone.global_pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def check_cuttable(backbone: nn.Module, cut: int) -> None:
    missing = [a for a in ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "global_pool") if not hasattr(backbone, a)]
    if missing:
        raise ConfigError(f"{type(backbone).__name__} cannot be cut by stage (no {', '.join(missing)}): "
                         "stage caching needs an EfficientNet-family backbone")
    if not 1 <= cut < len(backbone.blocks):
        raise ConfigError(f"cut={cut}: the backbone has stages 0..{len(backbone.blocks) - 1}; cut must be 1..{len(backbone.blocks) - 1}")


def view_augmentation(size: int):
    from torchvision import transforms as T

    return T.Compose([T.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(0.8, 1.25)),
                      T.ColorJitter(0.3, 0.3, 0.25, 0.03)])


def tile_views(tiles: np.ndarray, views: int, seed: int, image_id: str) -> np.ndarray:
    """uint8 [T × views, S, S, 3]: each tile, then its views-1 augmented versions (seeded per image)."""
    if views == 1:
        return tiles
    aug = view_augmentation(tiles.shape[1])
    torch.manual_seed(int.from_bytes(hashlib.sha256(f"{seed}:{image_id}".encode()).digest()[:4], "big"))
    out = []
    for t in tiles:
        out.append(t)
        img = Image.fromarray(t)
        out += [np.asarray(aug(img)) for _ in range(views - 1)]
    return np.stack(out)


@dataclass
class StageCache:
    acts: np.ndarray          # float16 [tiles × views, C, H, W] (memory-mapped)
    ids: list[str]
    offsets: np.ndarray       # [images + 1] tile offsets
    views: int

    def tile_rows(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tile indices of the given images and, per tile, the position of its image in `ids`."""
        return FeatureCache(np.empty((0, 0)), self.ids, self.offsets).rows(ids)

    def rows(self, tiles: np.ndarray, view: np.ndarray | int = 0) -> np.ndarray:
        return np.asarray(tiles) * self.views + view


def stage_key(backbone: str, size: int, cut: int, views: int, seed: int, weights: str) -> str:
    w = weights if weights in ("auto", "hub", "none") else hashlib.sha256(weights.encode()).hexdigest()[:8]
    return f"{backbone}-{size}-cut{cut}-v{views}-s{seed}-{w}"


def build_stage_cache(
    images: Sequence[tuple[str, Path]], backbone: str, folder: Path, cut: int, views: int = 4, seed: int = 0,
    weights: str = "auto", size: int | None = None, read_tiles: Callable[[str], np.ndarray] | None = None,
    features_dir: Path | None = None, batch_tiles: int = 64,
) -> StageCache:
    """The trunk's activations for every image (resuming a partial build), and, with `features_dir`,
    the frozen backbone's pooled features of view 0 in training.features' format (the top is cheap),
    so a frozen head and the fine-tune that starts from it share one pass over the images."""
    d = input_defaults(backbone)
    size = size or d["size"]
    spec = InputSpec(size=size, mean=d["mean"], std=d["std"])
    key = stage_key(backbone, size, cut, views, seed, weights)
    npy, meta_path = Path(folder) / f"{key}.npy", Path(folder) / f"{key}.json"
    ids = [i for i, _ in images]
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() and npy.is_file() else None
    complete = meta is not None and meta["ids"] == ids and meta["done"] == len(ids)
    if complete and (features_dir is None or covers(load_cache(Path(features_dir), backbone, size), ids, weights)):
        return StageCache(np.load(npy, mmap_mode="r"), ids, np.asarray(meta["offsets"]), views)
    model = create_backbone(backbone, weights, size).eval()
    check_cuttable(model, cut)
    trunk, top = Trunk(model, cut), Top(model, cut)
    if meta is None or meta["ids"] != ids:
        offsets = [0]
        for image_id, path in tqdm(images, desc="stage cache: tiles", unit="img", mininterval=5):
            offsets.append(offsets[-1] + _tile_count(image_id, path, size, read_tiles))
        with torch.inference_mode():
            shape = tuple(trunk(torch.zeros(1, 3, size, size)).shape[1:])
        meta = {"backbone": backbone, "size": size, "cut": cut, "views": views, "seed": seed, "weights": weights,
                "shape": list(shape), "ids": ids, "offsets": offsets, "done": 0}
        npy.parent.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(npy, mode="w+", dtype=np.float16, shape=(offsets[-1] * views, *shape)).flush()
        _save_meta(meta_path, meta)
    acts = np.load(npy, mmap_mode="r+")
    offsets = np.asarray(meta["offsets"])
    feat_file = Path(str(npy).replace(".npy", ".features.npy"))
    fresh = not feat_file.is_file()
    pooled = np.lib.format.open_memmap(feat_file, mode="w+" if fresh else "r+", dtype=np.float32,
                                       shape=(offsets[-1], model.num_features))
    if fresh and meta["done"]:
        # the pooled features of the images done before are gone: the top recomputes them from view 0
        with torch.inference_mode():
            for b in range(0, int(offsets[meta["done"]]), batch_tiles):
                rows = np.arange(b, min(b + batch_tiles, int(offsets[meta["done"]]))) * views
                pooled[rows // views] = top(torch.from_numpy(np.asarray(acts[rows], np.float32))).numpy()
    bar = tqdm(total=len(images), initial=meta["done"], desc=f"stage cache {key}", unit="img", mininterval=10)
    for start in range(meta["done"], len(images), CHUNK_IMAGES):
        chunk = images[start:start + CHUNK_IMAGES]
        tiles = [tile_views(_tiles(i, p, size, read_tiles), views, seed, i) for i, p in chunk]
        x = np.concatenate(tiles)
        out = []
        with torch.inference_mode():
            for b in range(0, len(x), batch_tiles):
                a = trunk(torch.from_numpy(normalize(x[b:b + batch_tiles], spec)))
                out.append(a)
            a = torch.cat(out)
            first = torch.arange(0, len(a), views)
            f = top(a[first]).numpy()
        lo, hi = offsets[start] * views, offsets[start + len(chunk)] * views
        acts[lo:hi] = a.numpy().astype(np.float16)
        pooled[offsets[start]:offsets[start + len(chunk)]] = f
        acts.flush()
        pooled.flush()
        meta["done"] = start + len(chunk)
        _save_meta(meta_path, meta)
        bar.update(len(chunk))
    bar.close()
    if features_dir is not None:
        # the frozen backbone's features of the served tiles, as training.features.extract writes them
        fnpy, fmeta = cache_paths(Path(features_dir), backbone, size)
        fnpy.parent.mkdir(parents=True, exist_ok=True)
        np.save(fnpy.with_suffix(".tmp.npy"), np.asarray(pooled))
        fnpy.with_suffix(".tmp.npy").replace(fnpy)
        fmeta.write_text(json.dumps({"backbone": backbone, "size": size, "weights": weights, "ids": ids,
                                     "offsets": [int(o) for o in offsets]}))
    del pooled
    feat_file.unlink(missing_ok=True)
    return StageCache(np.load(npy, mmap_mode="r"), ids, offsets, views)


def _tiles(image_id: str, path: Path, size: int, read_tiles) -> np.ndarray:
    return read_tiles(image_id) if read_tiles else tiles_uint8(Image.open(path), size)


def _tile_count(image_id: str, path: Path, size: int, read_tiles) -> int:
    if read_tiles:
        return len(read_tiles(image_id))
    from runtime.preprocess import tile_boxes

    with Image.open(path) as im:
        return len(tile_boxes(*im.size))


def _save_meta(path: Path, meta: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(path)
