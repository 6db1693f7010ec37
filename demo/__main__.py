"""`make demo` (`python -m demo`): the whole product in one command, without a GeoGuessr account.

Starts the companion (the bundled default model) and the local practice site (tests/geosite), then
Chromium with the extension loaded and paired, signed in to the site in a new game:
- with a display ($DISPLAY or $WAYLAND_DISPLAY) the browser opens for you to play; Ctrl-C (or closing
  the browser) stops everything;
- without one it runs headless, plays one round itself and prints where the screenshots went.

The demo lives outside companion/ on purpose: the companion knows nothing of the site or the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("LF_CHROMIUM", "/usr/bin/chromium"))
COMPANION_READY = re.compile(r"Lost & Found companion on (http://\S+) \(token: (\S+)\)")
SITE_READY = re.compile(r"GeoSite on (http://\S+) \(sign in: (\S+) / (\S+?),")
# Set by Ctrl-C or SIGTERM. A terminal's Ctrl-C also reaches Playwright's driver, which then closes the
# browser: what fails after this is set is the stop itself, not an error.
STOP = threading.Event()


class Stopped(Exception):
    pass


class Child:
    """A server child in its own session: the terminal's Ctrl-C reaches the demo only, which stops the
    children itself, in order, and waits for them."""

    def __init__(self, name: str, cmd: list[str], ready: re.Pattern, env: dict | None = None, timeout: float = 180):
        self.name, self.log = name, []
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        found = threading.Event()
        self.match = None

        def pump():
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                if self.match is None and (m := ready.search(line)):
                    self.match = m
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if STOP.is_set():
                self.stop()
                raise Stopped
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"demo: the {name} did not start:\n" + "\n".join(self.log[-20:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)   # both servers shut down cleanly on SIGINT
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def launch(p, profile: Path, extension: Path, headless: bool):
    ext = str(extension)
    return p.chromium.launch_persistent_context(
        str(profile), headless=headless, executable_path=str(CHROMIUM), viewport={"width": 1280, "height": 800},
        args=[f"--disable-extensions-except={ext}", f"--load-extension={ext}", "--no-first-run", "--disable-sync",
              "--disable-background-networking", "--disable-component-update", "--no-default-browser-check",
              *(["--no-sandbox"] if os.geteuid() == 0 else [])])


def play_one_round(context, game, web_ui: str, out: Path) -> dict:
    """Headless: the overlay's answer, the round's result, the next round's answer, and the web UI with an
    image dropped on it, each screenshotted."""
    from tests.extension_fixtures import wait_for_overlay

    out.mkdir(parents=True, exist_ok=True)
    shots = {"round": out / "1-round-1-overlay.png", "result": out / "2-round-1-result.png",
             "next": out / "3-round-2-overlay.png", "web_ui": out / "4-companion-web-ui.png"}
    state = wait_for_overlay(game, timeout=120)
    game.screenshot(path=str(shots["round"]))
    game.click('[data-qa="guess-map"] canvas', position={"x": 150, "y": 80})   # the player's guess, not the model's
    game.click('[data-qa="perform-guess"]')
    game.wait_for_selector('[data-qa="close-round-result"]')
    game.screenshot(path=str(shots["result"]))
    game.click('[data-qa="close-round-result"]')
    nxt = wait_for_overlay(game, timeout=120, new_round_than=state["round"])
    game.screenshot(path=str(shots["next"]))
    ui = context.new_page()
    ui.goto(web_ui)
    ui.wait_for_selector("body[data-ready='1']", timeout=30_000)
    ui.set_input_files("#file", str(sorted((ROOT / "tests" / "fixtures" / "images").glob("*.jpg"))[0]))
    ui.wait_for_function("document.getElementById('status').textContent.includes('ms')", timeout=60_000)
    ui.screenshot(path=str(shots["web_ui"]))
    summary = {"overlay": state, "next_round": nxt, "screenshots": {k: str(v) for k, v in shots.items()}}
    (out / "demo.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true", help="no window: play one round, save screenshots")
    mode.add_argument("--headed", action="store_true", help="open a window even where no display is detected")
    ap.add_argument("--stay", action="store_true", help="headless: keep everything running after the round, until Ctrl-C")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "demo", help="where the headless screenshots go")
    args = ap.parse_args(argv)
    headless = args.headless or not (args.headed or has_display())
    if not CHROMIUM.exists():
        print(f"demo: needs Chromium at {CHROMIUM} (`make chromium` installs Debian's; or set LF_CHROMIUM)", file=sys.stderr)
        return 2
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from tests.extension_fixtures import extension_for_tests, set_options, sign_in_and_start

    def on_signal(signum, frame):
        if not STOP.is_set():
            print("\ndemo: stopping", flush=True)
        STOP.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    work = Path(tempfile.mkdtemp(prefix="lf-demo-"))
    children: list[Child] = []
    token = "demo-" + secrets.token_urlsafe(9)
    failed = None
    try:
        # its own config/data folders: the demo does not touch a player's saved token or Play scores
        env = dict(os.environ, LF_CONFIG_DIR=str(work / "config"), LF_DATA_DIR=str(work / "data"), PYTHONUNBUFFERED="1")
        children.append(Child("companion", [sys.executable, "-m", "companion", "serve", "--port", "0", "--token", token],
                              COMPANION_READY, env))
        base = children[-1].match.group(1)
        children.append(Child("practice site", [sys.executable, "-m", "tests.geosite", "--port", "0"], SITE_READY,
                              dict(os.environ, PYTHONUNBUFFERED="1")))
        url, email, password = children[-1].match.groups()
        site = SimpleNamespace(url=url, email=email, password=password)
        web_ui = f"{base}/?token={token}"
        print(f"demo: companion on {base} (web UI {web_ui})\ndemo: practice site on {url} (sign in: {email} / {password})",
              flush=True)

        with sync_playwright() as p:
            try:
                context = launch(p, work / "profile", extension_for_tests(work / "extension"), headless)
            except PlaywrightError as e:
                hint = "" if headless else " (no usable display? `make demo ARGS=--headless`)"
                raise SystemExit(f"demo: Chromium did not start{hint}: {str(e).splitlines()[0]}") from None
            try:
                worker = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker")
                set_options(worker, companionUrl=base.replace("http://", "ws://", 1) + "/ws", token=token)
                game = context.pages[0] if context.pages else context.new_page()
                sign_in_and_start(game, site)
                print(f"demo: signed in, a game at {game.url}: the Lost & Found overlay shows the model's answer",
                      flush=True)
                if headless and not STOP.is_set():
                    summary = play_one_round(context, game, web_ui, args.out)
                    top = ", ".join(f"{c['name']} {c['p']}" for c in summary["overlay"]["countries"][:3])
                    print(f"demo: the overlay answered: {top}")
                    print("demo: screenshots:\n" + "\n".join(f"  {v}" for v in summary["screenshots"].values()),
                          flush=True)
                if not headless:
                    context.new_page().goto(web_ui)   # the web UI in a second tab (Predict, Play)
                    game.bring_to_front()
                if not headless or args.stay:
                    print("demo: running; Ctrl-C (or closing the browser) stops everything", flush=True)
                    while context.pages and not STOP.is_set():
                        context.pages[0].wait_for_timeout(300)   # Playwright's own wait: its events keep flowing
                context.close()
            except PlaywrightError as e:
                # after Ctrl-C, or the player closing the browser window, this is the way out
                if not (STOP.is_set() or (not headless and "closed" in str(e))):
                    failed = str(e).splitlines()[0]
    except Stopped:
        pass
    except Exception:
        if not STOP.is_set():   # else: Playwright's driver, stopped by the same Ctrl-C, went first
            raise
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(f"demo: the browser failed: {failed}", file=sys.stderr)
        return 1
    print("demo: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
