"""What the extension's browser tests and benchmark run against: a real companion process, a recording
websocket relay in front of it, and the local GeoGuessr-like site (the browsers: tests/browsers.py).
"""

from __future__ import annotations

import http
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response
from websockets.sync.client import connect
from websockets.sync.server import serve

from tests.browsers import CHROMIUM, EXECUTABLES, Chromium, launch  # noqa: F401 - CHROMIUM: re-exported for the Chromium-only tests
from tests.paths import ROOT, stop_process

EXTENSION = ROOT / "extension"
DEFAULT_BUNDLE = ROOT / "companion" / "models" / "default"
DEV_BUNDLE = ROOT / "work" / "dev-bundle"
TOKEN = "e2e-token-5b1f"
OVERLAY = "#lf-overlay-host"


def model_bundle() -> Path | None:
    """The bundled default model, else the companion helper's development bundle; None if neither exists."""
    explicit = os.environ.get("LF_E2E_MODEL")
    for path in [Path(explicit)] if explicit else [DEFAULT_BUNDLE, DEV_BUNDLE]:
        if (path / "bundle.json").is_file() and (path / "model.onnx").is_file():
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Companion:
    """`python -m companion serve` as a child process on a fixed port, so that it can be stopped and restarted."""

    def __init__(self, model: Path, token: str = TOKEN, port: int | None = None):
        self.model, self.token = model, token
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log: list[str] = []

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 90) -> Companion:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "companion", "serve", "--model", str(self.model), "--host", "127.0.0.1",
             "--port", str(self.port), "--token", self.token, "--threads", "1"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                if "Lost & Found companion on http://" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        while not ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the companion did not start:\n" + "\n".join(self.log[-30:]))
        return self

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, 10)
        self.proc = None

    def predict(self, images: list[Path]) -> list[dict]:
        """`python -m companion predict --json` on the same bytes the extension sent."""
        out = subprocess.run([sys.executable, "-m", "companion", "predict", "--json", "--model", str(self.model),
                              "--threads", "1", *map(str, images)], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, check=True)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@dataclass
class Frame:
    header: dict
    image: bytes
    raw_header: bytes


@dataclass
class Relay:
    """A websocket relay between the extension and the companion that records every message.

    It lets a test look at exactly what left the browser (headers, image bytes) and at every answer.
    Plain HTTP requests (GET /v1/model, /v1/health) are passed through to the companion unchanged.
    """

    upstream: str
    port: int = 0
    delay: float = 0.0        # seconds each prediction is held back (a companion that answers late)
    frames: list[Frame] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)     # text messages from the extension (pings)
    replies: list[dict] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._server = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _handle(self, client) -> None:
        query = client.request.path.partition("?")[2]
        self.queries.append(query)
        try:
            upstream = connect(f"{self.upstream}?{query}", open_timeout=5, max_size=None)
        except OSError:
            client.close()
            return
        with upstream:
            self._pump(client, upstream)

    def _pump(self, client, upstream) -> None:
        def down():
            try:
                for msg in upstream:
                    reply = json.loads(msg)
                    self.replies.append(reply)
                    if self.delay and reply.get("type") == "prediction":
                        threading.Timer(self.delay, _send_late, (client, msg)).start()
                    else:
                        client.send(msg)
            except ConnectionClosed:
                pass
            finally:
                client.close()

        threading.Thread(target=down, daemon=True).start()
        try:
            for msg in client:
                if isinstance(msg, bytes):
                    (n,) = struct.unpack(">I", msg[:4])
                    raw = msg[4:4 + n]
                    self.frames.append(Frame(json.loads(raw), msg[4 + n:], raw))
                else:
                    self.controls.append(msg)
                upstream.send(msg)
        except ConnectionClosed:
            pass
        finally:
            upstream.close()

    def _http(self, connection, request):
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        base = self.upstream.replace("ws://", "http://", 1).rsplit("/", 1)[0]
        try:
            with urllib.request.urlopen(base + request.path, timeout=60) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "application/json")
        except OSError:
            return connection.respond(502, "companion unreachable\n")
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return Response(status, http.HTTPStatus(status).phrase, headers, body)

    def start(self) -> Relay:
        self._server = serve(self._handle, "127.0.0.1", self.port, max_size=None, process_request=self._http)
        self.port = self._server.socket.getsockname()[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()


def _send_late(client, msg) -> None:
    try:
        client.send(msg)
    except ConnectionClosed:   # the page moved on meanwhile
        pass


# The shipped extension runs on www.geoguessr.com only; the local test site is served from loopback.
LOCAL_SITES = ["http://127.0.0.1/*", "http://localhost/*"]


def extension_for_tests(dest: Path, screenshots: bool = False) -> Path:
    """A copy of the extension whose content scripts also run on the local test site (any loopback port).

    With `screenshots`, its optional "<all_urls>" permission (the screenshot fallback) is granted at install:
    a player grants it in the options page, but a headless browser cannot answer that permission prompt,
    so the copy lists it among the required host permissions instead. Nothing else differs.
    """
    shutil.copytree(EXTENSION, dest, dirs_exist_ok=True)
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["content_scripts"] + manifest["web_accessible_resources"]:
        entry["matches"] += LOCAL_SITES
    if screenshots:
        manifest["host_permissions"] += manifest.pop("optional_host_permissions")
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return dest


def extension_with_screenshots(dest: Path) -> Path:
    """The test copy with the screenshot permission granted (the e2e fallback test, the benchmark)."""
    return extension_for_tests(dest, screenshots=True)


@contextmanager
def browser(p, user_data_dir: Path, extension: Path, viewport=(1280, 720)):
    """Chromium only, from a started sync Playwright `p`: yields (context, service worker). The interface
    that runs a test in Chromium and Firefox is tests/browsers.py."""
    with launch("chromium", user_data_dir, extension, p, viewport) as b:
        yield b.context, b.worker


@contextmanager
def paired_browser(p, tmp_path_factory, ws_url: str, **options):
    """`browser` on a fresh test copy of the extension and profile, paired with the companion at `ws_url`
    (TOKEN unless `options` say otherwise; `options` are set too)."""
    extension = extension_for_tests(tmp_path_factory.mktemp("extension"))
    with browser(p, tmp_path_factory.mktemp("profile"), extension) as (context, worker):
        set_options(worker, companionUrl=ws_url, **{"token": TOKEN, **options})
        yield context, worker


def each_browser(request, playwright, tmp_path_factory, chromium_fixture: str, **options):
    """The body of a module fixture parametrized over EXECUTABLES: the extension in `request.param`'s browser,
    with `options` set. Chromium's is the module's `chromium_fixture` (a (context, worker, ...) tuple), so that
    a module starts one Chromium for its Chromium-only and its every-browser tests alike."""
    name = request.param
    if not EXECUTABLES[name].exists():
        pytest.skip(f"needs {name} at {EXECUTABLES[name]}")
    if name == "chromium":
        context, worker = request.getfixturevalue(chromium_fixture)[:2]
        yield Chromium(context, worker)
        return
    extension = extension_for_tests(tmp_path_factory.mktemp("extension"))
    with launch(name, tmp_path_factory.mktemp(f"{name}-profile"), extension, playwright) as b:
        b.set_options(**options)
        yield b


def playwright_session():
    """A started sync Playwright, for a module fixture: `yield from playwright_session()`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def set_options(worker, **settings) -> None:
    """Set the extension's options as its options page does (chrome.storage), from its service worker."""
    worker.evaluate("(patch) => LF.saveSettings(patch)", settings)


def sign_in_and_start(page, site, mode: str = "singleplayer") -> str:
    """The player's way in, by visible text: cookie banner, sign-in form, menus. Returns the game URL."""
    page.goto(site.url + "/")
    if page.locator("#onetrust-accept-btn-handler").count():
        page.click("#onetrust-accept-btn-handler")
    page.fill("input[name=email]", site.email)
    page.fill("input[name=password]", site.password)
    page.click("button[type=submit]")
    if mode == "singleplayer":
        page.get_by_text("Singleplayer").click()
        page.get_by_text("World").click()
        page.get_by_text("Play", exact=True).click()
        page.get_by_text("Start game").click()
        page.wait_for_url(re.compile(r".*/game/[A-Za-z0-9]{16}$"))
    else:
        page.get_by_text("Multiplayer").click()
        page.get_by_text("Battle Royale Countries").click()
        page.get_by_text("Join").click()
        page.wait_for_url(re.compile(r".*/battle-royale/[A-Za-z0-9]{16}$"))
    return page.url


def open_game(context, site, mode: str = "singleplayer"):
    """A new tab in a new game, signed in by cookie (sign_in_and_start covers the visible way in)."""
    context.add_cookies([{"name": "_ncfa", "value": site.new_session(), "url": site.url},
                         {"name": "OptanonAlertBoxClosed", "value": "1", "url": site.url}])
    page = context.new_page()
    if mode == "singleplayer":
        page.goto(site.url + "/maps/world")
        page.get_by_text("Play", exact=True).click()
        page.get_by_text("Start game").click()
        page.wait_for_url(re.compile(r".*/game/[A-Za-z0-9]{16}$"))
    else:
        page.goto(site.url + "/battle-royale")
        page.get_by_text("Join").click()
        page.wait_for_url(re.compile(r".*/battle-royale/[A-Za-z0-9]{16}$"))
    return page


def overlay_state(page) -> dict:
    """What the overlay shows, read from its (open) shadow root."""
    return page.evaluate("""() => {
      const host = document.getElementById('lf-overlay-host');
      if (!host) return null;
      const s = host.shadowRoot;
      const q = (n) => s.querySelector(`[data-lf="${n}"]`);
      return {
        visible: host.isConnected && getComputedStyle(host).display !== 'none',
        light: q('light').dataset.state,
        status: q('status').textContent,
        countries: [...s.querySelectorAll('[data-lf="country"]')].map((li) => ({
          code: li.dataset.code, name: li.querySelector('.name').textContent, p: li.querySelector('.p').textContent,
          flag: li.querySelector('.flag').textContent })),
        regions: [...s.querySelectorAll('[data-lf="region"]')].map((d) => d.textContent),
        foot: q('foot').textContent,
        round: host.dataset.lfRound || null,
        captureMs: host.dataset.lfCaptureMs ? Number(host.dataset.lfCaptureMs) : null,
        minimap: !q('minimap').hidden,
        // pixels of the mini-map in the cells' amber (blended with the land, so not the pin's pure #f5a623)
        shadedPixels: (() => {
          const c = q('minimap').querySelector('canvas');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) {
            if (d[i] > 150 && d[i] < 238 && d[i] - d[i + 2] > 90 && d[i + 1] > 60 && d[i + 1] < d[i] - 30) n++;
          }
          return n;
        })(),
      };
    }""")


def wait_for(predicate, timeout: float = 15, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def wait_for_overlay(page, timeout: float = 15, new_round_than: str | None = None, min_frames: int = 1) -> dict:
    def ready():
        s = overlay_state(page)
        if s and s["countries"] and s["round"] and s["round"] != new_round_than:
            m = re.search(r"(\d+) views", s["foot"])
            if (int(m.group(1)) if m else 1) >= min_frames:
                return s
        return None

    return wait_for(ready, timeout, what="a prediction in the overlay")


def guess_and_next(page) -> None:
    """Play the round as a player would (the extension never does this itself)."""
    page.click('[data-qa="guess-map"] canvas', position={"x": 150, "y": 80})
    page.click('[data-qa="perform-guess"]')
    page.click('[data-qa="close-round-result"]')
