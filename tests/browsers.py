"""The browsers the extension's end-to-end scenario runs in, behind one small interface.

`launch(name, profile, extension)` yields an `ExtensionBrowser`: Debian Chromium through Playwright (the
extension loaded unpacked, its service worker at hand) or Debian Firefox through WebDriver BiDi
(`tests/bidi.py`, the extension installed as a temporary add-on). Pages are Playwright pages in Chromium
and `tests.bidi.Page` (the same API subset) in Firefox; what differs is how a test reaches the
extension itself (its storage, commands, background, options page), which is what this class hides.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from tests import bidi

CHROMIUM = Path(os.environ.get("LF_CHROMIUM", "/usr/bin/chromium"))
FIREFOX = bidi.FIREFOX
EXECUTABLES = {"chromium": CHROMIUM, "firefox": FIREFOX}
OPTIONS_PAGE = "options/options.html"


class ExtensionBrowser:
    """A browser with the extension installed. `new_page`/`add_cookies` as on a Playwright context."""

    name: str
    base_url: str   # the extension's origin: chrome-extension://<id> or moz-extension://<uuid>

    def new_page(self):
        raise NotImplementedError

    def add_cookies(self, cookies: list[dict]) -> None:
        raise NotImplementedError

    def in_extension(self, source: str, arg=None):
        """Evaluate `source` (an expression, or a function called with `arg`) where the extension's scripts
        run: LF (shared/settings.js) and the browser's extension API are there."""
        raise NotImplementedError

    def set_options(self, **settings) -> None:
        """Set the extension's options as its options page does (LF.saveSettings → storage.local)."""
        self.in_extension("(patch) => LF.saveSettings(patch)", settings)

    def commands(self) -> list[dict]:
        return self.in_extension("() => LF.api.commands.getAll()")

    def toggle_overlay(self) -> None:
        """What the hotkey does: the background's command handler (a headless browser has no key bindings)."""
        raise NotImplementedError

    def open_options(self):
        """The options page in a new tab, as the toolbar icon opens it."""
        page = self.new_page()
        page.goto(f"{self.base_url}/{OPTIONS_PAGE}")
        return page


class Chromium(ExtensionBrowser):
    name = "chromium"

    def __init__(self, context, worker):
        self.context, self.worker = context, worker
        self.base_url = worker.url.split("/background.js")[0]

    def new_page(self):
        return self.context.new_page()

    def add_cookies(self, cookies):
        self.context.add_cookies(cookies)

    def in_extension(self, source, arg=None):
        return self.worker.evaluate(source, arg)

    def toggle_overlay(self):
        self.worker.evaluate("lfToggleOverlay()")


class Firefox(ExtensionBrowser):
    """Extension code runs in a tab on one of the extension's own pages (BiDi has no handle on the
    background page), which reaches the background through runtime.getBackgroundPage."""

    name = "firefox"

    def __init__(self, ff: bidi.Firefox):
        self.ff = ff
        self.base_url = ff.base_url
        self._ext_page = None

    def new_page(self):
        return self.ff.new_page()

    def add_cookies(self, cookies):
        self.ff.add_cookies(cookies)

    def _extension_page(self):
        if self._ext_page is None:
            # opened in the background: the game tab stays the active one (capture waits for its repaints)
            ctx = self.ff.session.send("browsingContext.create", type="tab", background=True)["context"]
            self._ext_page = bidi.Page(self.ff, ctx)
            self._ext_page.goto(f"{self.base_url}/{OPTIONS_PAGE}")
        return self._ext_page

    def in_extension(self, source, arg=None):
        return self._extension_page().evaluate(source, arg)

    def toggle_overlay(self):
        self.in_extension("async () => (await LF.api.runtime.getBackgroundPage()).lfToggleOverlay()")


@contextmanager
def launch(name: str, profile: Path, extension: Path, playwright=None, viewport=(1280, 720)):
    """`name`'s browser, headless, with the unpacked `extension` (a copy from `extension_for_tests`)."""
    if name == "chromium":
        if playwright is None:
            raise ValueError("Chromium runs through Playwright: pass a started sync_playwright()")
        ext = str(extension)
        context = playwright.chromium.launch_persistent_context(
            str(profile), headless=True, executable_path=str(CHROMIUM),
            viewport={"width": viewport[0], "height": viewport[1]},
            args=[f"--disable-extensions-except={ext}", f"--load-extension={ext}", "--no-sandbox",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--disable-quic"])
        try:
            worker = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker")
            yield Chromium(context, worker)
        finally:
            context.close()
    elif name == "firefox":
        manifest = json.loads((Path(extension) / "manifest.json").read_text(encoding="utf-8"))
        ff = bidi.Firefox(profile, manifest["browser_specific_settings"]["gecko"]["id"], viewport).start()
        try:
            ff.install(extension)
            yield Firefox(ff)
        finally:
            ff.stop()
    else:
        raise ValueError(f"unknown browser {name!r} (chromium or firefox)")
