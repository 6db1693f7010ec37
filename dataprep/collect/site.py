"""What a player does on the site, one Playwright page at a time: sign in, start a game (from its page's
URL by `data-qa` buttons, else by visible text from the home page), capture the panorama, guess, and read
what the results screen shows after the guess. Elements are found by `Selectors` lists, first match wins.

Every wait here is bounded (`Timeouts`) and calls `beat()` at least every few seconds, so the
supervisor can tell a slow round from a hung browser.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from runtime.cli import Failed

from .config import CollectConfig, ModeConfig, expand_selector
from .frames import Frame

CHUNK_S = 5.0  # longest single wait between heartbeats

_LATLNG = re.compile(r"(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)")
_COUNTRY = re.compile(r"^\s*(.+?)\s*\(\s*([A-Za-z]{2})\s*\)\s*$", re.S)
_ROUND = re.compile(r"(\d+)\s*/\s*(\d+)")

# Hide everything but the panorama and the chain of its ancestors by a stylesheet rule rather than by
# tagging what is there now: an overlay added later (a late cookie banner, a round's result banner)
# matches the rule as soon as it is inserted, so it never reaches a screenshot. Ancestors stay visible
# (a hidden ancestor would hide the panorama too), but not their ::before/::after.
_HIDE_OTHERS = """(el) => {
  for (let n = el.parentElement; n; n = n.parentElement) n.setAttribute('data-lf-keep', '');
  el.setAttribute('data-lf-target', '');
  const style = document.createElement('style');
  style.id = 'lf-hide-style';
  style.textContent = `:not([data-lf-keep], [data-lf-target], [data-lf-target] *),
    [data-lf-keep]::before, [data-lf-keep]::after { visibility: hidden !important }`;
  (document.head || document.documentElement).appendChild(style);
}"""
_UNHIDE = """() => {
  document.getElementById('lf-hide-style')?.remove();
  for (const n of document.querySelectorAll('[data-lf-keep], [data-lf-target]')) {
    n.removeAttribute('data-lf-keep');
    n.removeAttribute('data-lf-target');
  }
}"""
# What still shows over the panorama despite the rule (e.g. an inline `visibility: visible !important`),
# or the panorama itself hidden (its ancestors replaced): a short description, or null when clear.
_OBSTRUCTION = """(el) => {
  const seen = {opacityProperty: true, visibilityProperty: true};
  if (!el.checkVisibility(seen)) return 'the panorama itself is hidden';
  const box = el.getBoundingClientRect();
  for (const n of document.body.querySelectorAll(':not([data-lf-keep])')) {
    if (el.contains(n) || !n.checkVisibility(seen)) continue;
    const r = n.getBoundingClientRect();
    if (r.width && r.height && r.left < box.right && r.right > box.left && r.top < box.bottom && r.bottom > box.top) {
      return n.outerHTML.slice(0, 120);
    }
  }
  return null;
}"""


class CollectError(Exception):
    """A failure the worker survives: counted under `kind`, then the game is abandoned."""

    kind = "error"


class RateLimited(CollectError):
    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message if retry_after is None else f"{message} (Retry-After: {retry_after:g} s)")
        self.retry_after = retry_after  # seconds the site asked us to wait, when it said


class RenderTimeout(CollectError):
    kind = "render_timeout"


class BlackFrame(CollectError):
    kind = "black_frame"


class Obscured(CollectError):
    kind = "obscured"


class DuplicateGame(CollectError):
    kind = "duplicate_game"


class LoggedOut(CollectError):
    kind = "logged_out"


class NavigationError(CollectError):
    kind = "navigation"


class ResultUnreadable(CollectError):
    kind = "result_unreadable"


class LoginFailed(Failed):
    """Wrong or missing credentials: no point in retrying, the run stops."""


def parse_latlng(text: str) -> tuple[float, float]:
    m = _LATLNG.search(text)
    if not m:
        raise ResultUnreadable(f"no coordinates in {text!r}")
    lat, lng = float(m.group(1)), float(m.group(2))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ResultUnreadable(f"coordinates out of range in {text!r}")
    return lat, lng


def parse_country(text: str) -> tuple[str, str]:
    """'France (FR)' -> ('France', 'FR')."""
    m = _COUNTRY.match(text)
    if not m:
        raise ResultUnreadable(f"no 'Country (CC)' in {text!r}")
    return m.group(1), m.group(2).upper()


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_round(text: str) -> tuple[int, int]:
    m = _ROUND.search(text)
    if not m:
        raise ResultUnreadable(f"no 'N / M' round counter in {text!r}")
    return int(m.group(1)), int(m.group(2))


class Site:
    def __init__(self, page: Page, cfg: CollectConfig, beat: Callable[[], None] = lambda: None):
        self.page = page
        self.cfg = cfg
        self.sel = cfg.selectors
        self.t = cfg.timeouts
        self.beat = beat
        self.saw_429 = False
        self.retry_after: float | None = None  # the last 429's Retry-After
        page.set_default_timeout(self.t.action_s * 1000)
        page.on("response", self._on_response)
        # The banner may appear at any time (it is injected late on the real site): whenever it
        # covers something we click, Playwright accepts it first.
        page.add_locator_handler(self.any("cookie_accept"), lambda btn: btn.click())

    def _on_response(self, response) -> None:
        if response.status == 429:
            self.saw_429 = True
            self.retry_after = parse_retry_after(response.headers.get("retry-after"))

    def any(self, hook: str, visible: bool = False) -> Locator:
        """Every element any of `hook`'s selectors matches (a `Selectors` field name, or a list of selectors)."""
        locators = self._locators(hook, visible)
        union = locators[0]
        for other in locators[1:]:
            union = union.or_(other)
        return union

    def loc(self, hook: str, visible: bool = False) -> Locator:
        """The first match of the first of `hook`'s selectors that matches now; when none does yet, the first
        match of any (to wait for)."""
        for locator in self._locators(hook, visible):
            if locator.count():
                return locator.first
        return self.any(hook, visible).first

    def _locators(self, hook, visible: bool) -> list[Locator]:
        selectors = getattr(self.sel, hook) if isinstance(hook, str) else hook
        locators = [self.page.locator(expand_selector(s)) for s in selectors]
        return [x.filter(visible=True) for x in locators] if visible else locators

    def url(self, path: str) -> str:
        return urljoin(self.cfg.base_url.rstrip("/") + "/", path.lstrip("/"))

    # -- waiting ------------------------------------------------------------------------------
    def wait(self, locator: Locator, total_s: float, state: str = "visible") -> None:
        """locator.wait_for in heartbeat-sized pieces."""
        deadline = time.monotonic() + total_s
        while True:
            self.beat()
            left = deadline - time.monotonic()
            try:
                locator.wait_for(state=state, timeout=max(1.0, min(CHUNK_S, left)) * 1000)
                return
            except PlaywrightTimeout:
                self.check_rate_limit()
                if time.monotonic() >= deadline:
                    raise

    def rate_limit_text(self) -> Locator:
        return self.page.get_by_text(self.sel.rate_limit_text)

    def check_rate_limit(self) -> None:
        if self.saw_429 or self.rate_limit_text().count():
            retry_after, self.saw_429, self.retry_after = self.retry_after, False, None
            raise RateLimited(f"rate limited at {self.page.url}", retry_after)

    # -- session ------------------------------------------------------------------------------
    def goto(self, path: str) -> None:
        self.beat()
        response = self.page.goto(self.url(path), wait_until="domcontentloaded")
        if response is not None and response.status == 429:
            raise RateLimited(f"HTTP 429 at {self.page.url}", parse_retry_after(response.headers.get("retry-after")))
        self.check_rate_limit()

    def on_signin(self, url: str | None = None) -> bool:
        path = urlsplit(url or self.page.url).path
        return path.rstrip("/").startswith(self.cfg.signin_path.rstrip("/"))

    def accept_cookies(self) -> None:
        btn = self.loc("cookie_accept")
        if btn.is_visible():
            btn.dispatch_event("click")  # not .click(): the locator handler would take that click first

    def login(self, email: str, password: str) -> None:
        if not self.on_signin():
            self.goto(self.cfg.signin_path)
        self.accept_cookies()
        self.loc("email").fill(email)
        self.loc("password").fill(password)
        self.loc("login_submit").click()
        try:
            self.page.wait_for_url(lambda url: not self.on_signin(url), timeout=self.t.action_s * 1000)
        except PlaywrightTimeout:
            raise LoginFailed(f"still on the sign-in page after logging in as {email!r}: wrong credentials?") from None

    def logged_in(self) -> bool:
        """Open the home page; the site sends a visitor without a session to the sign-in page."""
        self.goto("/")
        self.accept_cookies()
        return not self.on_signin()

    # -- a game -------------------------------------------------------------------------------
    def start_game(self, mode: ModeConfig) -> str:
        """Open the mode's page and click its steps; when a step is not there (the site changed), the last
        resort: the visible texts from the home page. Returns the game id from the URL."""
        self.saw_429, self.retry_after = False, None
        try:
            return self._start(mode.start_path, mode.steps, mode)
        except NavigationError:
            if not mode.text_steps:
                raise
        return self._start("/", mode.text_steps, mode)

    def _start(self, path: str, steps: list[list[str] | str], mode: ModeConfig) -> str:
        self.goto(path)
        if self.on_signin():
            raise LoggedOut("the session has expired")
        for step in steps:
            # a plain string is a visible text, matched exactly
            alternatives = [step] if isinstance(step, str) else step
            selectors = [f"text={json.dumps(a)}" for a in alternatives] if isinstance(step, str) else alternatives
            try:
                self.wait(self.any(selectors, visible=True).or_(self.rate_limit_text()).first, self.t.action_s)
            except PlaywrightTimeout:
                raise NavigationError(f"none of {alternatives} visible on {self.page.url}") from None
            self.check_rate_limit()
            self.loc(selectors, visible=True).click()
        pattern = re.compile(mode.game_url)
        try:
            self.wait(self.any("panorama").or_(self.rate_limit_text()).first, self.t.action_s)
            self.check_rate_limit()
            self.page.wait_for_url(pattern)
        except PlaywrightTimeout:
            raise NavigationError(f"no game page after {path} > {steps} (at {self.page.url})") from None
        self.check_rate_limit()
        return pattern.search(self.page.url).group(1)

    def round_number(self) -> tuple[int, int]:
        counter = self.loc("round_number")
        self.wait(counter, self.t.action_s)
        return parse_round(counter.inner_text())

    def wait_round_after(self, round_no: int, total_s: float) -> None:
        moved_on = self.any("round_number").filter(has_not_text=re.compile(rf"(?<!\d){round_no}\s*/"))
        self.wait(moved_on.first, total_s)

    # -- the panorama -------------------------------------------------------------------------
    def capture(self, not_like: Frame | None = None) -> Frame:
        """Screenshot of the panorama alone, once it has rendered and settled.

        Rendered: not blank (colour variance) and two consecutive reads agree, and — right after a
        round change, while the old image may still be up — different from the previous round's.
        Reads follow each other directly (each screenshot waits for a fresh frame), so no fixed sleep.
        """
        canvas = self.loc("panorama")
        self.wait(canvas, self.t.action_s)
        # Off the page: a panorama may fill the window, leaving no point on the page that is off it
        # (and a street view draws its hover cursor into the canvas, where CSS cannot hide it).
        self.page.mouse.move(-1, -1)
        canvas.evaluate(_HIDE_OTHERS)
        try:
            return self._settled(canvas, not_like)
        finally:
            self.page.evaluate(_UNHIDE)

    def _settled(self, canvas: Locator, not_like: Frame | None) -> Frame:
        blank, stable = self.cfg.blank_std, self.cfg.stable_diff
        start = time.monotonic()
        black_since = None
        prev = None
        while True:
            self.beat()
            obstruction = canvas.evaluate(_OBSTRUCTION)
            if obstruction:
                raise Obscured(f"{obstruction} shows over the panorama at {self.page.url}")
            frame = Frame.from_png(canvas.screenshot(timeout=self.t.action_s * 1000))
            now = time.monotonic()
            fresh = not_like is None or frame.differs(not_like) > stable
            if frame.is_black(blank):
                black_since = black_since if black_since is not None else now
                if now - black_since >= self.t.black_s:
                    raise BlackFrame(f"uniformly black panorama for {self.t.black_s:.0f} s at {self.page.url}")
            else:
                black_since = None
                if fresh and not frame.is_blank(blank) and prev is not None and frame.differs(prev) <= stable:
                    return frame
            if now - start >= self.t.render_s:
                raise RenderTimeout(f"panorama not rendered within {self.t.render_s:.0f} s at {self.page.url}")
            prev = frame

    # -- after the round ------------------------------------------------------------------------
    def guess_and_read(self) -> tuple[float, float]:
        """Place an arbitrary guess, then read the correct location off the results screen."""
        guess_map = self.loc("guess_map")
        guess_map.hover()  # the real guess map grows on hover: measure it afterwards
        box = guess_map.bounding_box()
        if box is None:
            raise NavigationError("the guess map has no size")
        self.page.mouse.click(
            box["x"] + box["width"] * random.uniform(0.3, 0.7), box["y"] + box["height"] * random.uniform(0.3, 0.7)
        )
        self.loc("guess_button").click()
        result = self.any("correct_location").first
        self.wait(result, self.t.action_s)
        return parse_latlng(result.inner_text())

    def next_round(self, round_no: int) -> None:
        self.loc("next_round").click()
        self.wait_round_after(round_no, self.t.action_s)

    def read_country(self) -> tuple[str, str]:
        """Spectating battle royale: wait for the round's result banner, read its country."""
        banner = self.any("round_country").first
        self.wait(banner, self.t.br_round_s)
        return parse_country(banner.inner_text())
