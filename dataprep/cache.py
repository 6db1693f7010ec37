"""`cache`: the packed tile cache training reads instead of decoding JPEGs every epoch.

`<out>/<size>-<key[:16]>/`:
  tiles.npy    uint8 [rows, size, size, 3], memory-mappable (np.load(..., mmap_mode="r"))
  index.json   {"size", "key", "datalist_sha256", "ids": [...], "first_row": [...], "tiles": [...]}:
               sample ids[i] owns rows first_row[i] … first_row[i] + tiles[i] - 1
Tiles come from companion.preprocess.tiles_uint8 (a 2:1 image gives 2), so training sees exactly
what the companion computes. The key hashes the tile size, the data-list (source image hashes) and
the resized image paths (whose folder names the resize settings): other settings get their own
folder; an existing complete folder (index.json is written last) is reused as is. Training finds
the folder of its dataset with `tile_reader` and reads tiles from it instead of decoding JPEGs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from companion.preprocess import decode_image, tile_boxes, tiles_uint8
from dataprep import datalist
from dataprep.records import Sample, image_path, read_manifest


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def _fill(job: tuple[str, str, int, int, int]) -> None:
    tiles_file, src, size, first, count = job
    arr = np.load(tiles_file, mmap_mode="r+")
    tiles = tiles_uint8(decode_image(Path(src).read_bytes()), size)
    if len(tiles) != count:
        raise ValueError(f"{src}: {len(tiles)} tiles, expected {count}")
    arr[first:first + count] = tiles
    arr.flush()


def cache_key(samples: list[Sample], size: int) -> str:
    rows = sorted(samples, key=lambda s: s.id)
    text = f"{size}\n" + datalist.render(rows) + "\n".join(s.image for s in rows)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build(samples: list[Sample], manifest: Path, out_dir: Path, size: int = 224, workers: int = 0) -> Path:
    key = cache_key(samples, size)
    folder = out_dir / f"{size}-{key[:16]}"
    if (folder / "index.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rows = sorted(samples, key=lambda s: s.id)
    paths = [image_path(s, manifest) for s in rows]
    counts = [len(tile_boxes(*_image_size(p))) for p in tqdm(paths, desc="cache: sizes", unit="img", leave=False)]
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    tiles_file = folder / "tiles.npy"
    np.lib.format.open_memmap(tiles_file, mode="w+", dtype=np.uint8, shape=(sum(counts), size, size, 3)).flush()
    jobs = [(str(tiles_file), str(p), size, f, c) for p, f, c in zip(paths, first, counts, strict=True)]
    with Pool(workers or os.cpu_count() or 1) as pool:
        for _ in tqdm(pool.imap_unordered(_fill, jobs, chunksize=32), total=len(jobs), desc="cache", unit="img"):
            pass
    index = {"size": size, "key": key, "datalist_sha256": datalist.digest(datalist.render(rows)),
             "ids": [s.id for s in rows], "first_row": first, "tiles": counts}
    tmp = folder / "index.json.tmp"
    tmp.write_text(json.dumps(index) + "\n", encoding="utf-8")
    tmp.replace(folder / "index.json")
    return folder


def load(folder: Path | str) -> tuple[np.ndarray, dict]:
    """(tiles memmap, index) of a built cache."""
    folder = Path(folder)
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return np.load(folder / "tiles.npy", mmap_mode="r"), index


def tile_reader(samples: list[Sample], manifest: Path, size: int) -> Callable[[str], np.ndarray] | None:
    """sample id → its uint8 tiles from the dataset's packed cache, or None when no built cache matches."""
    folder = Path(manifest).parent / "cache" / f"{size}-{cache_key(samples, size)[:16]}"
    if not (folder / "index.json").is_file():
        return None
    tiles, index = load(folder)
    rows = {i: (f, n) for i, f, n in zip(index["ids"], index["first_row"], index["tiles"], strict=True)}

    def read(sample_id: str) -> np.ndarray:
        first, count = rows[sample_id]
        return np.array(tiles[first:first + count])

    return read


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="final manifest")
    p.add_argument("--out", required=True, help="cache root (a keyed subfolder is made inside)")
    p.add_argument("--size", type=int, default=224, help="tile side in px")
    p.add_argument("--workers", type=int, default=0, help="processes (0: all cores)")


def main(args: argparse.Namespace) -> int:
    samples = list(read_manifest(args.inp))
    folder = build(samples, Path(args.inp), Path(args.out), args.size, args.workers)
    tiles, index = load(folder)
    print(f"cache: {folder} ({tiles.shape[0]} tiles of {args.size}px for {len(index['ids'])} records)")
    return 0
