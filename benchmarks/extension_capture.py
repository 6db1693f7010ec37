"""Capture-to-overlay time of the extension, in headless Chromium and Firefox on the local GeoGuessr-like site.

    python benchmarks/extension_capture.py [--rounds 10] [--model PATH] [--mode canvas|tab]
                                           [--browser chromium|firefox|both]

For each round: the time from the content script starting the capture of the settled frame to the
overlay showing the answer (read, encode, message to the background, websocket, companion inference,
answer, render), as the extension measures it; and the time from the click on "Next round" to the
overlay (which adds the site's 200–800 ms panorama loading and the wait for a still frame).
Prints the median (and spread) over the rounds, per browser (one companion serves both, one after the other).
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

from tests.browsers import EXECUTABLES, launch  # noqa: E402
from tests.extension_fixtures import (  # noqa: E402
    TOKEN,
    Companion,
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


def measure(name: str, companion: Companion, rounds: int, mode: str, playwright) -> dict[str, list[float]]:
    capture_ms, round_ms, model_ms = [], [], []
    with GeoSite() as site, tempfile.TemporaryDirectory() as tmp:
        extension = extension_with_screenshots(Path(tmp) / "extension")
        with launch(name, Path(tmp) / "profile", extension, playwright) as b:
            b.set_options(companionUrl=companion.ws_url, token=TOKEN, captureMode=mode)
            page = open_game(b, site)
            # warm-up round (model load, first websocket, GET /v1/model): not counted
            state = wait_for_overlay(page, timeout=60)
            rounds_in_game = 1
            while len(capture_ms) < rounds:
                if rounds_in_game == 5:
                    page.close()
                    page = open_game(b, site)
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
                print(f"{name} round {len(capture_ms):2d}: capture→overlay {state['captureMs']:5.0f} ms, "
                      f"model {model_ms[-1]:4.0f} ms, next-round click→overlay {round_ms[-1]:5.0f} ms "
                      f"({state['countries'][0]['code']})", flush=True)
    return {"capture→overlay": capture_ms, "  of which model (server)": model_ms,
            "next-round click→overlay": round_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--model", type=Path, default=None, help="model bundle (default: the bundled one)")
    ap.add_argument("--mode", choices=["canvas", "tab"], default="canvas", help="capture path to measure")
    ap.add_argument("--browser", choices=["chromium", "firefox", "both"], default="both")
    args = ap.parse_args()
    model = args.model or model_bundle()
    if model is None:
        sys.exit("no model bundle: pass --model")
    names = sorted(EXECUTABLES) if args.browser == "both" else [args.browser]
    for name in names:
        if not EXECUTABLES[name].exists():
            sys.exit(f"no {name} at {EXECUTABLES[name]} (make chromium / make firefox)")
    from playwright.sync_api import sync_playwright

    companion = Companion(model).start()
    results = {}
    try:
        with sync_playwright() as p:
            for name in names:
                results[name] = measure(name, companion, args.rounds, args.mode, p)
    finally:
        companion.stop()
    for name, series in results.items():
        print(f"\n{name} · model {model} · capture: {args.mode} · {args.rounds} rounds")
        for label, values in series.items():
            print(summary(label, values))


if __name__ == "__main__":
    main()
