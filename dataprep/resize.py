"""`resize`: downscaled JPEG copies (longer side `max_side`), all cores, idempotent and resumable.

Copies go to `<images_dir>/<id>.jpg`, written to a temporary name and renamed, so a file that exists
is complete: a re-run (or a run after an interruption) skips it. Images already small enough are
not upscaled: a JPEG is copied byte for byte, anything else re-encoded. Inputs are only read.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
from multiprocessing import Pool
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from dataprep.config import ResizeConfig
from dataprep.drops import Drop, drops_path, write_drops
from runtime.config import add_config_arguments, config_from_args
from runtime.preprocess import MAX_PIXELS
from runtime.records import Sample, image_path, read_manifest, write_manifest

STAGE = "resize"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def out_name(sample_id: str) -> str:
    safe = SAFE_NAME.sub("_", sample_id)
    if safe != sample_id:  # ids "a/b" and "a_b" must not share a file
        safe += "-" + hashlib.sha1(sample_id.encode("utf-8")).hexdigest()[:8]
    return safe + ".jpg"


def resize_one(job: tuple[str, str, int, int]) -> str | None:
    """Write one copy; returns None when done (or already there), else why it failed."""
    src, dst, max_side, quality = job
    dst_path = Path(dst)
    # resumable: an existing copy is kept unless its source changed after it was written
    if dst_path.exists() and dst_path.stat().st_mtime >= Path(src).stat().st_mtime:
        return None
    tmp = dst_path.with_name(f".{dst_path.name}.{os.getpid()}.tmp")
    try:
        with Image.open(src) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                return f"image is {w}x{h}, more than {MAX_PIXELS} pixels"
            if w < 16 or h < 16:
                return f"image is {w}x{h}, too small"
            scale = max_side / max(w, h)
            if scale >= 1 and img.format == "JPEG":
                img.load()  # a truncated JPEG must fail here, not be copied
                shutil.copyfile(src, tmp)
            else:
                size = (max(1, round(w * min(scale, 1))), max(1, round(h * min(scale, 1))))
                img.draft("RGB", size)  # JPEG: decode at 1/2, 1/4, 1/8 scale when that still covers `size`
                rgb = img.convert("RGB")
                if rgb.size != size:
                    rgb = rgb.resize(size, Image.LANCZOS)
                rgb.save(tmp, "JPEG", quality=quality, optimize=True)
        tmp.replace(dst_path)
        return None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        tmp.unlink(missing_ok=True)
        return f"unreadable image: {e}"


def resize(samples: list[Sample], manifest_in: Path, images_dir: Path, manifest_out: Path,
           cfg: ResizeConfig | None = None) -> tuple[list[Sample], list[Drop]]:
    cfg = cfg or ResizeConfig()
    images_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(str(image_path(s, manifest_in)), str(images_dir / out_name(s.id)), cfg.max_side, cfg.quality)
            for s in samples]
    workers = cfg.workers or os.cpu_count() or 1
    with Pool(workers) as pool:
        results = list(tqdm(pool.imap(resize_one, jobs, chunksize=16), total=len(jobs), desc="resize", unit="img"))
    out, drops = [], []
    base = manifest_out.parent.resolve()
    for s, (_, dst, _, _), err in zip(samples, jobs, results, strict=True):
        if err:
            drops.append(Drop(s.id, STAGE, err, s.image))
            continue
        dst_path = Path(dst).resolve()
        rel = dst_path.relative_to(base).as_posix() if dst_path.is_relative_to(base) else str(dst_path)
        out.append(s.with_(image=rel))
    return out, drops


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="manifest to read")
    p.add_argument("--out", required=True, help="manifest to write (image paths → the copies)")
    p.add_argument("--images", required=True, help="folder for the resized copies")
    add_config_arguments(p, ResizeConfig)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(ResizeConfig, args)
    samples = list(read_manifest(args.inp))
    out, drops = resize(samples, Path(args.inp), Path(args.images), Path(args.out), cfg)
    write_manifest(args.out, out)
    write_drops(drops_path(args.out), drops)
    print(f"resize: {len(out)} images in {args.images}, {len(drops)} unreadable")
    return 0
