"""Capture-to-overlay time of the extension, in headless Chromium on the local GeoGuessr-like site.

    python benchmarks/extension_capture.py [--rounds 10] [--model PATH] [--mode canvas|tab]

For each round: the time from the content script starting the capture of the settled frame to the
overlay showing the answer (read, encode, message to the background, websocket, companion inference,
answer, render), as the extension measures it; and the time from the click on "Next round" to the
overlay (which adds the site's 200–800 ms panorama loading and the wait for a still frame).
Prints the median (and spread) over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.extension_fixtures import (  # noqa: E402
    TOKEN,
    Companion,
    browser,
    extension_with_screenshots,
    model_bundle,
    open_game,
    wait_for_overlay,
)
from tests.geosite import GeoSite  # noqa: E402


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
    return (f"{name:<28} median {statistics.median(values):7.0f} ms   min {values[0]:6.0f}   p90 {p90:6.0f}   "
            f"max {values[-1]:6.0f}   (n={len(values)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--model", type=Path, default=None, help="model bundle (default: the bundled one)")
    ap.add_argument("--mode", choices=["canvas", "tab"], default="canvas", help="capture path to measure")
    args = ap.parse_args()
    model = args.model or model_bundle()
    if model is None:
        sys.exit("no model bundle: pass --model")
    from playwright.sync_api import sync_playwright

    companion = Companion(model).start()
    capture_ms, round_ms, model_ms = [], [], []
    try:
        with GeoSite() as site, tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
            extension = extension_with_screenshots(Path(tmp) / "extension")
            with browser(p, Path(tmp) / "profile", extension=extension) as (context, worker):
                worker.evaluate("(s) => LF.saveSettings(s)",
                                {"companionUrl": companion.ws_url, "token": TOKEN, "captureMode": args.mode})
                page = open_game(context, site)
                # warm-up round (model load, first websocket, GET /v1/model): not counted
                state = wait_for_overlay(page, timeout=60)
                rounds_in_game = 1
                while len(capture_ms) < args.rounds:
                    if rounds_in_game == 5:
                        page.close()
                        page = open_game(context, site)
                        rounds_in_game = 0
                        t0 = time.perf_counter()
                    else:
                        page.click('[data-qa="guess-map"] canvas', position={"x": 150, "y": 80})
                        page.click('[data-qa="perform-guess"]')
                        t0 = time.perf_counter()
                        page.click('[data-qa="close-round-result"]')
                    state = wait_for_overlay(page, timeout=30, new_round_than=state["round"])
                    round_ms.append((time.perf_counter() - t0) * 1000)
                    capture_ms.append(state["captureMs"])
                    model_ms.append(float(state["foot"].split("model ")[1].split(" ms")[0]))
                    rounds_in_game += 1
                    print(f"round {len(capture_ms):2d}: capture→overlay {state['captureMs']:5.0f} ms, "
                          f"model {model_ms[-1]:4.0f} ms, next-round click→overlay {round_ms[-1]:5.0f} ms "
                          f"({state['countries'][0]['code']})", flush=True)
    finally:
        companion.stop()
    print(f"\nmodel {model} · capture: {args.mode} · {args.rounds} rounds")
    print(summary("capture→overlay", capture_ms))
    print(summary("  of which model (server)", model_ms))
    print(summary("next-round click→overlay", round_ms))


if __name__ == "__main__":
    main()
