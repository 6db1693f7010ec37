"""Debian Firefox driven over WebDriver BiDi, its own remote protocol: no driver binary, no browser download.

A small synchronous client over `websockets` (already a dependency): launch `firefox-esr --headless
--remote-debugging-port`, open a BiDi session, install an unpacked add-on as a temporary one
(`webExtension.install`), and drive tabs with navigation, script evaluation, input and screenshots.
`Page` offers the part of Playwright's sync `Page` API the extension's tests use, so one scenario runs
in both browsers.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections import deque
from contextlib import ExitStack
from pathlib import Path

from websockets.sync.client import connect

from tests.paths import stop_process

FIREFOX = Path(os.environ.get("LF_FIREFOX") or shutil.which("firefox-esr") or "/usr/bin/firefox-esr")

# A quiet, reproducible profile: no first-run pages, updates, telemetry or background requests.
PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.aboutwelcome.enabled": False,
    "browser.tabs.warnOnClose": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "media.autoplay.default": 0,
    "webgl.force-enabled": True,   # llvmpipe is on WebGL's blocklist
    "devtools.console.stdout.content": True,   # console messages into `log`, for a failing test's report
    # a background tab's timers are throttled to 1/s and slower: the tests keep several tabs open
    "dom.min_background_timeout_value": 4,
    "dom.timeout.enable_budget_timer_throttling": False,
}

KEYS = {"ArrowRight": "\ue014", "ArrowLeft": "\ue012", "Enter": "\ue007", "Escape": "\ue00c"}


class BiDiError(RuntimeError):
    pass


class Session:
    """One BiDi websocket: commands answered by id; events are only counted (navigations, per tab), since
    the tests poll the page for everything else."""

    def __init__(self, url: str):
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=30))
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.navigations: dict[str, int] = {}   # browsing context → navigations started in it

    def send(self, method: str, timeout: float = 60, **params):
        with self.lock:
            n = next(self.ids)
            self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
            deadline = time.monotonic() + timeout
            while True:
                msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if msg.get("type") == "event" and msg["method"] == "browsingContext.navigationStarted":
                    ctx = msg["params"]["context"]
                    self.navigations[ctx] = self.navigations.get(ctx, 0) + 1
                if msg.get("id") != n:
                    continue
                if msg.get("type") == "error":
                    raise BiDiError(f"{method}: {msg.get('error')}: {msg.get('message')}")
                return msg["result"]

    def close(self) -> None:
        self._stack.close()


class Firefox:
    """Headless Firefox with a fresh profile whose moz-extension:// UUID for `addon_id` is pinned, so that the
    extension's pages have a URL known before the install."""

    def __init__(self, profile: Path, addon_id: str, viewport=(1280, 720)):
        if not FIREFOX.exists():
            raise FileNotFoundError(f"no Firefox at {FIREFOX} (apt-get install firefox-esr, or set LF_FIREFOX)")
        self.profile, self.addon_id, self.viewport = Path(profile), addon_id, viewport
        self.uuid = str(uuid.uuid4())
        self.proc: subprocess.Popen | None = None
        self.session: Session | None = None
        self.log: deque[str] = deque(maxlen=2000)   # Firefox's output, console messages included

    @property
    def base_url(self) -> str:
        return f"moz-extension://{self.uuid}"

    def start(self, timeout: float = 60) -> Firefox:
        self.profile.mkdir(parents=True, exist_ok=True)
        prefs = {**PREFS, "extensions.webextensions.uuids": json.dumps({self.addon_id: self.uuid})}
        (self.profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items()), encoding="utf-8")
        env = {**os.environ, "MOZ_HEADLESS_WIDTH": str(self.viewport[0]),
               "MOZ_HEADLESS_HEIGHT": str(self.viewport[1]), "MOZ_CRASHREPORTER_DISABLE": "1",
               # headless Firefox finds no GL without a display; Mesa's llvmpipe over EGL gives it WebGL
               "MOZ_WEBGL_FORCE_EGL": "1", "LIBGL_ALWAYS_SOFTWARE": "1"}
        # --remote-allow-system-access: BiDi refuses to navigate to moz-extension:// pages without it
        self.proc = subprocess.Popen(
            [str(FIREFOX), "--headless", "--no-remote", "--profile", str(self.profile),
             "--remote-debugging-port", "0", "--remote-allow-system-access", "about:blank"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        ready = threading.Event()
        url: list[str] = []

        def read():
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                if m := re.search(r"WebDriver BiDi listening on (ws://\S+)", line):
                    url.append(m.group(1))
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("Firefox did not start its BiDi server:\n" + "\n".join(list(self.log)[-30:]))
        self.session = Session(url[0].rstrip("/") + "/session")
        self.session.send("session.new", capabilities={"alwaysMatch": {"acceptInsecureCerts": True}})
        self.session.send("session.subscribe", events=["browsingContext.navigationStarted"])
        return self

    def install(self, extension: Path) -> str:
        """The unpacked add-on at `extension`, as a temporary add-on (unsigned: the only way, as in about:debugging)."""
        result = self.session.send("webExtension.install", extensionData={"type": "path", "path": str(extension)})
        return result["extension"]

    def new_page(self) -> Page:
        ctx = self.session.send("browsingContext.create", type="tab")["context"]
        page = Page(self, ctx)
        page.set_viewport_size({"width": self.viewport[0], "height": self.viewport[1]})
        return page

    def add_cookies(self, cookies: list[dict]) -> None:
        """Playwright-style cookies ({name, value, url})."""
        for c in cookies:
            host = re.match(r"https?://([^/:]+)", c["url"]).group(1)
            self.session.send("storage.setCookie", cookie={
                "name": c["name"], "value": {"type": "string", "value": c["value"]}, "domain": host, "path": "/"})

    def stop(self) -> None:
        if self.session:
            try:
                self.session.send("browser.close", timeout=10)
            except Exception:   # already gone: the process is stopped below either way
                pass
            self.session.close()
            self.session = None
        if self.proc:
            stop_process(self.proc, 15)
        self.proc = None


# Runs a Playwright-style `evaluate` argument: a function source is called with `arg`, anything else is an
# expression. The source is spliced into the declaration (no eval, which a page's CSP may forbid); the value
# comes back as JSON (BiDi's own serialization is richer than the tests need).
_EVALUATE = """async (arg) => {{
  const value = ({source});
  const result = typeof value === 'function' ? await value(arg) : await value;
  return JSON.stringify(result === undefined ? null : result);
}}"""


class Page:
    """A Firefox tab with the subset of Playwright's sync Page API the extension tests use."""

    def __init__(self, browser: Firefox, context: str):
        self.browser, self.context = browser, context
        self.keyboard = _Keyboard(self)

    @property
    def _s(self) -> Session:
        return self.browser.session

    @property
    def url(self) -> str:
        return self.evaluate("location.href")

    def set_viewport_size(self, size: dict) -> None:
        self._s.send("browsingContext.setViewport", context=self.context,
                     viewport={"width": size["width"], "height": size["height"]})

    def goto(self, url: str, timeout: float = 30) -> None:
        self._s.send("browsingContext.navigate", timeout=timeout, context=self.context, url=url, wait="complete")

    def evaluate(self, source: str, arg=None):
        r = self._s.send("script.callFunction", functionDeclaration=_EVALUATE.format(source=source),
                         awaitPromise=True, target={"context": self.context}, resultOwnership="none",
                         arguments=[_remote(arg)])
        if r["type"] == "exception":
            d = r["exceptionDetails"]
            raise BiDiError(f"evaluate: {d.get('text')} in {source[:80]!r}")
        return json.loads(r["result"]["value"])

    def wait_for(self, expression: str, timeout: float = 15, what: str | None = None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if v := self.evaluate(expression):
                    return v
            except BiDiError:   # the page navigated meanwhile
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what or expression}")

    def wait_for_url(self, pattern: re.Pattern, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not pattern.match(self.url):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for a URL like {pattern.pattern} (at {self.url})")
            time.sleep(0.05)
        self.wait_for("document.readyState === 'complete'")

    def wait_for_selector(self, selector: str, timeout: float = 15) -> None:
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})", timeout, what=selector)

    def _center(self, js_find: str, position: dict | None) -> tuple[float, float]:
        """Viewport coordinates of the element `js_find` returns (its top-left + `position`, else its centre),
        scrolled into view first, as Playwright's click does."""
        rect = self.wait_for(f"""(() => {{ const el = {js_find}; if (!el) return null;
            el.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }})()""",
                             what=js_find)
        x, y, w, h = rect
        return (x + position["x"], y + position["y"]) if position else (x + w / 2, y + h / 2)

    def _click_at(self, x: float, y: float) -> None:
        """A mouse click; if it started a navigation (a link, a form), wait for the new page to load, as
        Playwright does, so that the next step does not act on the page being left."""
        before = self._s.navigations.get(self.context, 0)
        self.evaluate("window.__bidiClickMark = true")
        self._s.send("input.performActions", context=self.context, actions=[{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
                {"type": "pointerMove", "x": round(x), "y": round(y), "origin": "viewport"},
                {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}])
        try:
            self.evaluate("0")   # a round trip after the click's handlers ran: their navigation event is in
        except BiDiError:        # (or the old document is already gone)
            pass
        if self._s.navigations.get(self.context, 0) != before:
            self.wait_for("window.__bidiClickMark !== true && document.readyState === 'complete'",
                          what="the page a click navigated to")

    def click(self, selector: str, position: dict | None = None) -> None:
        self._click_at(*self._center(f"document.querySelector({json.dumps(selector)})", position))

    def fill(self, selector: str, text: str) -> None:
        self.click(selector)
        self.evaluate("""([sel, text]) => { const el = document.querySelector(sel); el.value = text;
            el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); }""",
                      [selector, text])

    def get_by_text(self, text: str, exact: bool = False) -> _TextLocator:
        return _TextLocator(self, text, exact)

    def locator(self, selector: str) -> _Locator:
        return _Locator(self, selector)

    def screenshot(self, path: str) -> None:
        data = self._s.send("browsingContext.captureScreenshot", context=self.context)["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def bring_to_front(self) -> None:
        self._s.send("browsingContext.activate", context=self.context)

    def close(self) -> None:
        self._s.send("browsingContext.close", context=self.context)


def _remote(value) -> dict:
    """A JSON-able Python value as a BiDi LocalValue."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean", "value": value}
    if isinstance(value, (int, float)):
        return {"type": "number", "value": value}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, (list, tuple)):
        return {"type": "array", "value": [_remote(v) for v in value]}
    if isinstance(value, dict):
        return {"type": "object", "value": [[str(k), _remote(v)] for k, v in value.items()]}
    raise TypeError(f"cannot pass {type(value).__name__} to the page")


class _Keyboard:
    def __init__(self, page: Page):
        self.page = page

    def press(self, key: str) -> None:
        value = KEYS.get(key, key)
        self.page._s.send("input.performActions", context=self.page.context, actions=[{
            "type": "key", "id": "keyboard", "actions": [{"type": "keyDown", "value": value},
                                                         {"type": "keyUp", "value": value}]}])


class _Locator:
    def __init__(self, page: Page, selector: str):
        self.page, self.sel = page, json.dumps(selector)

    def count(self) -> int:
        return self.page.evaluate(f"document.querySelectorAll({self.sel}).length")

    def is_hidden(self) -> bool:
        return self.page.evaluate(f"""(() => {{ const el = document.querySelector({self.sel});
            return !el || !el.getClientRects().length || getComputedStyle(el).visibility === 'hidden'; }})()""")

    def is_disabled(self) -> bool:
        return self.page.evaluate(f"document.querySelector({self.sel}).disabled === true")


class _TextLocator:
    """The innermost visible element whose text is `text` (exact) or contains it, like Playwright's get_by_text."""

    def __init__(self, page: Page, text: str, exact: bool):
        self.page, self.text, self.exact = page, text, exact

    def click(self) -> None:
        find = f"""(() => {{ const want = {json.dumps(self.text)}, exact = {json.dumps(self.exact)};
            const norm = (s) => s.replace(/\\s+/g, ' ').trim();
            const ok = (el) => exact ? norm(el.textContent) === want : norm(el.textContent).toLowerCase().includes(want.toLowerCase());
            const all = [...document.body.querySelectorAll('*')].filter((el) => el.getClientRects().length && ok(el));
            return all.find((el) => ![...el.children].some(ok)) || null; }})()"""
        self.page._click_at(*self.page._center(find, None))
