"""`filter`: the seed's quality filters, every drop listed with its reason.

  unreadable  the image does not decode (runtime.preprocess.decode_image says why);
  colour      mean per-channel standard deviation below `min_color_std`: black or single-colour
              frames, tunnels, "no imagery" placeholders;
  blur        variance of the 3×3 Laplacian of the grey image below `min_laplacian_var`;
Both are measured inside a margin (8% top, 10% bottom, 5% each side): the sharp white "Google"
logo and copyright in the corners would otherwise make a black or blurred frame look fine.
  duplicate   coordinates equal (after rounding) to those of another location: the first location
              (in sorted order) keeps them. Views of one location share coordinates by design.
The measured metrics are written beside the manifest (`<out>.metrics.json`) for the report, which
plots their distributions with the thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import ImageStat
from tqdm import tqdm

from dataprep.config import FilterConfig, ResizeConfig
from dataprep.drops import Drop, drops_path, write_drops
from runtime.config import add_config_arguments, config_from_args
from runtime.preprocess import ImageError, decode_image
from runtime.records import Sample, image_path, read_manifest, write_manifest

STAGE = "filter"


def metrics_of(path: str) -> tuple[float, float] | str:
    """(colour std, Laplacian variance), or why the image is unreadable."""
    try:
        img = decode_image(Path(path).read_bytes())
    except (ImageError, OSError) as e:
        return f"unreadable image: {e}"
    w, h = img.size
    img = img.crop((round(w * 0.05), round(h * 0.08), round(w * 0.95), round(h * 0.90)))
    colour_std = float(np.mean(ImageStat.Stat(img).stddev))
    grey = np.asarray(img.convert("L"), np.float32)
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return colour_std, float(lap.var())


def measure(samples: list[Sample], manifest_in: Path, workers: int = 0) -> list[tuple[float, float] | str]:
    paths = [str(image_path(s, manifest_in)) for s in samples]
    with Pool(workers or os.cpu_count() or 1) as pool:
        return list(tqdm(pool.imap(metrics_of, paths, chunksize=16), total=len(paths), desc="filter", unit="img"))


def filter_samples(samples: list[Sample], metrics: list, cfg: FilterConfig | None = None) -> tuple[list[Sample], list[Drop]]:
    cfg = cfg or FilterConfig()
    min_color_std, min_laplacian_var, coord_decimals = cfg.min_color_std, cfg.min_laplacian_var, cfg.coord_decimals
    out, drops = [], []
    for s, m in zip(samples, metrics, strict=True):
        if isinstance(m, str):
            drops.append(Drop(s.id, STAGE, m, s.image))
        elif m[0] < min_color_std:
            drops.append(Drop(s.id, STAGE, f"colour std {m[0]:.1f} < {min_color_std:g} (blank or dark frame)", s.image))
        elif m[1] < min_laplacian_var:
            drops.append(Drop(s.id, STAGE, f"Laplacian variance {m[1]:.1f} < {min_laplacian_var:g} (blurred)", s.image))
        else:
            out.append(s)
    owner: dict[tuple[float, float], str] = {}
    for s in sorted(out, key=lambda s: (s.location, s.id)):
        owner.setdefault((round(s.lat, coord_decimals), round(s.lng, coord_decimals)), s.location)
    kept = []
    for s in out:
        first = owner[(round(s.lat, coord_decimals), round(s.lng, coord_decimals))]
        if first != s.location:
            drops.append(Drop(s.id, STAGE, f"duplicate coordinates of location {first}", s.image))
        else:
            kept.append(s)
    return kept, drops


def metrics_path(manifest_out: Path | str) -> Path:
    p = Path(manifest_out)
    return p.with_name(p.name.removesuffix(".jsonl") + ".metrics.json")


def write_metrics(path: Path, samples: list[Sample], metrics: list) -> None:
    rows = {s.id: m for s, m in zip(samples, metrics, strict=True) if not isinstance(m, str)}
    path.write_text(json.dumps({k: [round(a, 3), round(b, 3)] for k, (a, b) in sorted(rows.items())}) + "\n",
                    encoding="utf-8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in", dest="inp", required=True, help="manifest to read")
    p.add_argument("--out", required=True, help="manifest to write")
    add_config_arguments(p, FilterConfig)
    add_config_arguments(p, ResizeConfig, only=("workers",))  # `all` measures with resize's workers


def main(args: argparse.Namespace) -> int:
    samples = list(read_manifest(args.inp))
    metrics = measure(samples, Path(args.inp), config_from_args(ResizeConfig, args).workers)
    out, drops = filter_samples(samples, metrics, config_from_args(FilterConfig, args))
    write_manifest(args.out, out)
    write_drops(drops_path(args.out), drops)
    write_metrics(metrics_path(args.out), samples, metrics)
    print(f"filter: {len(out)} kept, {len(drops)} dropped (listed in {drops_path(args.out)})")
    return 0
