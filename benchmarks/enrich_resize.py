"""Benchmark: enrichment of 1M random points (target < 5 s) and resize throughput (images/s).

    .venv/bin/python benchmarks/enrich_resize.py [--points 1000000] [--images 2000]

Prints wall and CPU seconds: on a shared machine wall time includes waiting for the CPU.
Uses ../shared when present (full boundaries, real images), else the committed boundaries and the
fixture images.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataprep import boundaries  # noqa: E402
from dataprep.config import EnrichConfig, ResizeConfig  # noqa: E402
from dataprep.enrich import Locator  # noqa: E402
from dataprep.ingest import ingest  # noqa: E402
from dataprep.resize import resize  # noqa: E402


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self):
        return f"{self.wall:.2f} s wall, {self.cpu:.2f} s CPU"


def bench_enrich(n: int) -> None:
    with Timer() as t:
        gdf = boundaries.load(None)
    print(f"boundaries: {boundaries.resolve(None)} ({len(gdf)} regions) loaded in {t}")
    with Timer() as t:
        loc = Locator(gdf, EnrichConfig(max_km=20.0, grid_deg=0.1))
        loc.locate(np.array([0.0]), np.array([0.0]))  # builds the coast index too
    print(f"lookup grid {loc.grid.shape[1]}x{loc.grid.shape[0]} built in {t}; "
          f"{(loc.grid == -2).mean():.1%} of cells need exact tests")
    rng = np.random.default_rng(0)
    sphere = (np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n))
    box = (rng.uniform(-90, 90, n), rng.uniform(-180, 180, n))
    for name, (lat, lng) in (("uniform on the sphere", sphere), ("uniform in lat/lng", box)):
        with Timer() as t:
            idx, dist = loc.locate(lat, lng)
        print(f"enrich {n:,} points ({name}): {t} → {n / t.wall:,.0f} points/s; "
              f"{(dist == 0).mean():.1%} inside a region, {((idx >= 0) & (dist > 0)).mean():.2%} by the coast fallback")
    # the plain geopandas spatial join, for scale
    import geopandas as gpd

    m = min(n, 100_000)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(sphere[1][:m], sphere[0][:m]), crs="EPSG:4326")
    with Timer() as t:
        gpd.sjoin(pts, gdf[["geometry"]], predicate="within", how="left")
    print(f"plain geopandas sjoin of {m:,} points (no coast fallback): {t} → {m / t.wall:,.0f} points/s")


def bench_resize(count: int) -> None:
    shared = ROOT.parent / "shared" / "data" / "streetview"
    src = shared if shared.is_dir() else ROOT / "tests" / "fixtures" / "images"
    samples, _ = ingest([src])
    samples = samples[:count]
    workers = os.cpu_count() or 1
    for side in (320, 160):
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "m.jsonl"
            with Timer() as t:
                out, drops = resize(samples, manifest, Path(tmp) / "img", manifest, ResizeConfig(max_side=side, workers=workers))
            kind = "copies (already ≤ 320 px: decode check + byte copy)" if side == 320 else "real downscales"
            print(f"resize {len(samples)} images from {src.name}/ to {side} px, {workers} processes: "
                  f"{t.wall:.2f} s wall → {len(out) / t.wall:.0f} images/s ({kind})")
            shutil.rmtree(Path(tmp) / "img")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--images", type=int, default=2000)
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    bench_enrich(args.points)
    bench_resize(args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
