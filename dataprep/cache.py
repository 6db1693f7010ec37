"""`cache`: the packed tile cache training reads instead of decoding JPEGs every epoch.

`<out>/<size>-<key[:16]>/` holds tiles.npy and index.json (format: runtime.dataset; the index also
records "key" and "datalist_sha256"). Tiles come from runtime.preprocess.tiles_uint8 (a 2:1 image
gives 2), so training sees exactly what the companion computes. The key hashes the tile size, the data-list (source image hashes) and
the resized image paths (whose folder names the resize settings): other settings get their own
folder; an existing complete folder (index.json is written last) is reused as is. `build_published`
records the folder beside the manifest (runtime.dataset.publish_tiles): training reads that record,
not this module.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from runtime.dataset import load_tiles, publish_tiles
from runtime.preprocess import decode_image, tile_boxes, tiles_uint8
from runtime.records import Sample, digest, image_path, read_manifest, render_datalist


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
    text = f"{size}\n" + render_datalist(rows) + "\n".join(s.image for s in rows)
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
    index = {"size": size, "key": key, "datalist_sha256": digest(render_datalist(rows)),
             "ids": [s.id for s in rows], "first_row": first, "tiles": counts}
    tmp = folder / "index.json.tmp"
    tmp.write_text(json.dumps(index) + "\n", encoding="utf-8")
    tmp.replace(folder / "index.json")
    return folder


def build_published(manifest: Path, out_dir: Path, size: int = 224, workers: int = 0) -> Path:
    """Build the cache of every record of `manifest` and publish it beside the manifest."""
    folder = build(list(read_manifest(manifest)), manifest, out_dir, size, workers)
    publish_tiles(manifest, folder, size)
    return folder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="final manifest")
    p.add_argument("--out", required=True, help="cache root (a keyed subfolder is made inside)")
    p.add_argument("--size", type=int, default=224, help="tile side in px")
    p.add_argument("--workers", type=int, default=0, help="processes (0: all cores)")


def main(args: argparse.Namespace) -> int:
    folder = build_published(Path(args.inp), Path(args.out), args.size, args.workers)
    tiles, index = load_tiles(folder)
    print(f"cache: {folder} ({tiles.shape[0]} tiles of {args.size}px for {len(index['ids'])} records)")
    return 0
