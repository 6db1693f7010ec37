"""One worker: a process with its own Chromium, playing games until told to stop.

It reports everything to the supervisor as events on its own pipe: ("beat"), ("game", id),
("round", saved?), ("error", kind, message), ("browser", "launch"|"restart"), ("fatal", message).
A crashed browser is relaunched here; a hung worker is killed and restarted by the supervisor.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import random
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from playwright.sync_api import Browser, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .config import CHROMIUM, CHROMIUM_ARGS, CollectConfig
from .frames import Frame
from .site import BlackFrame, CollectError, DuplicateGame, LoggedOut, LoginFailed, Obscured, RateLimited, Site
from .store import Claims, PairStore, pair_id, save_session

BEAT_EVERY_S = 1.0


@dataclass
class Shared:
    """Cross-process state the supervisor hands every worker.

    Lock-free shared values plus an flock'd file: a worker killed or frozen while holding a
    multiprocessing lock would leave it held for good, while the kernel drops a dead process's flock.
    """

    stop: object  # RawValue('b'): finish the current round, then exit
    saved: object  # RawValue('i'): pairs saved in this run, by all workers
    cooldown_until: object  # RawValue('d'): time.time() before which no worker starts a game
    max_rounds: int  # -1: no limit
    lock_path: str

    @contextmanager
    def locked(self):
        with open(self.lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield


class Worker:
    def __init__(self, idx: int, cfg: CollectConfig, credentials: tuple[str, str] | None, events, shared: Shared):
        self.idx = idx
        self.cfg = cfg
        self.credentials = credentials
        self.events = events
        self.shared = shared
        self.store = PairStore(cfg.pairs_dir)
        self.claims = Claims(cfg.state_dir / "claims")
        self.mode = cfg.modes[cfg.mode]
        self.rate_hits = 0
        self._last_beat = 0.0

    # -- reporting ----------------------------------------------------------------------------
    def emit(self, *event) -> None:
        self.events.send((self.idx, *event))

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= BEAT_EVERY_S:
            self._last_beat = now
            self.emit("beat")

    @property
    def stopping(self) -> bool:
        return bool(self.shared.stop.value)

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> None:
        with sync_playwright() as pw:
            browser = None
            while not self.stopping:
                try:
                    if browser is None or not browser.is_connected():
                        restart = browser is not None
                        _close_quietly(browser)
                        self.emit("beat")
                        browser = launch(pw, self.cfg)
                        self.emit("browser", "restart" if restart else "launch")
                    self.play_game(browser)
                except LoginFailed as e:
                    self.emit("fatal", str(e))
                    return
                except RateLimited as e:
                    self.emit("error", e.kind, str(e))
                    self.back_off(e.retry_after)
                except CollectError as e:
                    self.emit("error", e.kind, str(e))
                except PlaywrightTimeout as e:
                    self.emit("error", "timeout", _first_line(e))
                except PlaywrightError as e:
                    crashed = browser is None or not browser.is_connected()
                    self.emit("error", "browser_crash" if crashed else "page_error", _first_line(e))
            _close_quietly(browser)

    def back_off(self, retry_after: float | None = None) -> None:
        """Exponential backoff with jitter, shared: a rate limit is per account, so every worker waits.

        At least as long as the site's Retry-After, when it sent one, but never over `backoff_max_s`:
        a bogus header must not park the run for days.
        """
        t = self.cfg.timeouts
        delay = min(t.backoff_max_s, t.backoff_s * 2**self.rate_hits) * random.uniform(0.75, 1.0)
        delay = min(t.backoff_max_s, max(delay, retry_after or 0.0))
        self.rate_hits += 1
        with self.shared.locked():
            self.shared.cooldown_until.value = max(self.shared.cooldown_until.value, time.time() + delay)

    def wait_cooldown(self) -> None:
        while not self.stopping:
            left = self.shared.cooldown_until.value - time.time()
            if left <= 0:
                return
            self.beat()
            time.sleep(min(left, BEAT_EVERY_S))

    def reserve_round(self) -> bool:
        """Take one slot of the run's round budget; False once it is spent (then the run stops)."""
        with self.shared.locked():
            if 0 <= self.shared.max_rounds <= self.shared.saved.value:
                self.shared.stop.value = 1
                return False
            self.shared.saved.value += 1
            return True

    def release_round(self) -> None:
        """Give back a slot whose pair could not be written: the budget counts pairs on disk."""
        with self.shared.locked():
            self.shared.saved.value -= 1

    def play_game(self, browser: Browser) -> None:
        self.wait_cooldown()
        if self.stopping:
            return
        state = self.cfg.storage_state_path
        context = browser.new_context(
            storage_state=str(state) if state.is_file() else None,
            viewport={"width": self.cfg.viewport[0], "height": self.cfg.viewport[1]},
        )
        try:
            site = Site(context.new_page(), self.cfg, self.beat)
            try:
                game_id = site.start_game(self.mode)
            except LoggedOut:
                if self.credentials is None:
                    raise LoginFailed("the session expired and no credentials were given") from None
                site.login(*self.credentials)
                save_session(state, context)  # atomic: other workers read it
                game_id = site.start_game(self.mode)
            self.rate_hits = 0
            if not self.claims.claim(game_id, f"worker {self.idx} pid {os.getpid()}"):
                raise DuplicateGame(f"game {game_id} is already being played by {self.claims.owner(game_id)}")
            self.emit("game", game_id)
            if self.cfg.mode == "singleplayer":
                self.play_singleplayer(site, game_id)
            else:
                self.play_battle_royale(site, game_id)
        finally:
            _close_quietly(context)

    def capture(self, site: Site, not_like: Frame | None) -> Frame | None:
        try:
            return site.capture(not_like)
        except (BlackFrame, Obscured) as e:  # counted, not saved; the round is still played to move on
            self.emit("error", e.kind, str(e))
            return None

    def save(self, game_id: str, round_no: int, frame: Frame | None, answer: dict) -> None:
        if frame is None:  # a black frame, or a round that changed under us: counted as an error already
            self.emit("round", "unsaved")
            return
        if self.store.has(game_id, round_no):  # resumed: this round was saved by an earlier run
            self.emit("round", "existing")
            return
        if not self.reserve_round():
            self.emit("round", "over_budget")
            return
        meta = {
            **answer,
            "source": self.cfg.source_name,
            "mode": self.cfg.mode,
            "game_id": game_id,
            "round": round_no,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if "lat" in answer:  # every view of one spot is one location (the unit of the train/val split)
            meta["location"] = f"{self.cfg.source_name}:{answer['lat']:.5f},{answer['lng']:.5f}"
        try:
            self.store.save(game_id, round_no, frame.png, meta)
        except OSError as e:  # e.g. a full disk: this round is lost, not the worker (nor its budget slot)
            self.release_round()
            self.emit("error", "save_failed", f"{pair_id(game_id, round_no)}: {e}")
            self.emit("round", "unsaved")
            return
        self.emit("round", "saved")

    def play_singleplayer(self, site: Site, game_id: str) -> None:
        last = None
        while True:
            round_no, total = site.round_number()
            if round_no == 1 and all(self.store.has(game_id, r) for r in range(1, total + 1)):
                self.emit("game_done", game_id, "already saved")
                return
            # Captured even when already saved: the wait for this round's render is what proves
            # the canvas no longer shows the previous round.
            frame = self.capture(site, last)
            last = frame or last
            lat, lng = site.guess_and_read()
            self.save(game_id, round_no, frame, {"lat": lat, "lng": lng, "heading": None})
            if round_no >= total:
                self.emit("game_done", game_id, "complete")
                return
            if self.stopping:
                return
            site.next_round(round_no)

    def play_battle_royale(self, site: Site, game_id: str) -> None:
        last = None
        while True:
            round_no, total = site.round_number()
            frame = self.capture(site, last)
            last = frame or last
            name, code = site.read_country()
            if frame is not None and site.round_number()[0] != round_no:
                # Spectating runs on the site's clock: when a read is slower than a round, the
                # screenshot or the banner may already belong to the next round.
                self.emit("error", "round_changed", f"round {round_no} of {game_id} ended during its capture")
                frame = None
            self.save(game_id, round_no, frame, {"country": code, "country_name": name})
            if round_no >= total:
                self.emit("game_done", game_id, "complete")
                return
            if self.stopping:
                return
            site.wait_round_after(round_no, self.cfg.timeouts.br_round_s)


def launch(pw: Playwright, cfg: CollectConfig) -> Browser:
    # Give up on a launch before the watchdog would give up on the worker: a retry is cheaper.
    return pw.chromium.launch(executable_path=CHROMIUM, headless=cfg.headless, args=CHROMIUM_ARGS,
                              timeout=cfg.timeouts.watchdog_s * 0.8 * 1000)


def _close_quietly(thing) -> None:
    if thing is None:
        return
    try:
        thing.close()
    except PlaywrightError:
        pass


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def _die_with_parent() -> None:
    """If the supervisor is killed, take this worker down too instead of collecting unsupervised."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def worker_main(idx: int, cfg_dict: dict, credentials, events, shared: Shared) -> None:
    """Process entry point (spawned: a fresh interpreter, no inherited Playwright state)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's: it stops us cleanly
    Worker(idx, CollectConfig.from_dict(cfg_dict), credentials, events, shared).run()
