"""Collector throughput on the local GeoGuessr-like site: rounds saved per minute with N workers.

    python benchmarks/collector_throughput.py --workers 2 --rounds 30

Starts `tests/geosite` on 127.0.0.1, runs `dataprep collect` (singleplayer, headless Chromium) into a
temporary folder until --rounds pairs are saved, and prints rounds/min over the whole run (sign-in and
browser start-up included) and over the steady state (from the first saved pair to the last).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataprep.collect.config import CollectConfig  # noqa: E402
from dataprep.collect.supervisor import run_collect  # noqa: E402
from tests.geosite import GeoSite  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--viewport", default="1280x800", help="browser window, WxH (the screenshot size)")
    args = ap.parse_args()
    width, height = (int(v) for v in args.viewport.split("x"))
    with tempfile.TemporaryDirectory() as tmp, GeoSite(seed=0) as site:
        cfg = CollectConfig(base_url=site.url, out=Path(tmp), workers=args.workers, max_rounds=args.rounds,
                            viewport=(width, height))
        t0 = time.time()
        summary = run_collect(cfg, (site.email, site.password), progress=True)
        stamps = sorted(os.path.getmtime(p) for p in cfg.pairs_dir.glob("*.json"))
        steady = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 60) if len(stamps) > 1 else float("nan")
        print(json.dumps({
            "workers": args.workers, "viewport": args.viewport, "pairs": summary["images_saved"],
            "wall_s": round(time.time() - t0, 1), "rounds_per_min_total": summary["rounds_per_min"],
            "rounds_per_min_steady": round(steady, 2), "errors": summary["errors"],
            "load_avg_1m": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
        }, indent=2))


if __name__ == "__main__":
    main()
