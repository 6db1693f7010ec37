"""The run: sign in once, start N worker processes, watch them, stop at the budget, summarise.

The watchdog is the supervisor's: a worker that sends nothing for `watchdog_s` (its browser hung
where no Playwright timeout reaches, e.g. a page stuck in a script) is killed with its whole process
tree and started again; a worker that died is started again too, unless it keeps dying.
"""

from __future__ import annotations

import getpass
import json
import multiprocessing as mp
import os
import pickle
import signal
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path

from playwright.sync_api import sync_playwright
from tqdm import tqdm

from .config import CollectConfig
from .site import LoginFailed, Site
from .store import Claims, PairStore, RunLock, save_session, write_atomic
from .worker import Shared, launch, worker_main

EMAIL_ENV, PASSWORD_ENV = "GEOGUESSR_EMAIL", "GEOGUESSR_PASSWORD"
STOP_FILE = "stop"  # `touch OUT/state/stop`: finish the rounds under way, write the summary, exit


def credentials_from_env(prompt: bool) -> tuple[str, str] | None:
    email, password = os.environ.get(EMAIL_ENV), os.environ.get(PASSWORD_ENV)
    if email and password:
        return email, password
    if prompt and sys.stdin.isatty():
        return input("account e-mail: "), getpass.getpass("password: ")
    return None


def ensure_session(cfg: CollectConfig, credentials: tuple[str, str] | None) -> str:
    """Make `cfg.storage_state_path` hold a signed-in session; returns 'reused' or 'logged in'."""
    path = cfg.storage_state_path
    with sync_playwright() as pw:
        browser = launch(pw, cfg)
        try:
            context = browser.new_context(storage_state=str(path) if path.is_file() else None)
            site = Site(context.new_page(), cfg)
            if site.logged_in():
                how = "reused"
            else:
                if credentials is None:
                    raise LoginFailed(f"not signed in and no credentials: set {EMAIL_ENV} and {PASSWORD_ENV}")
                site.login(*credentials)
                how = "logged in"
            site.accept_cookies()
            path.parent.mkdir(parents=True, exist_ok=True)
            save_session(path, context)
            return how
        finally:
            browser.close()


def descendants(pid: int) -> list[int]:
    """All processes below pid (from /proc), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything below it; the tree is listed first, while it is intact."""
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Slot:
    idx: int
    proc: mp.Process | None = None
    events: Connection | None = None  # its own pipe: a worker killed mid-message garbles only that
    last_seen: float = 0.0
    starts: deque = field(default_factory=lambda: deque(maxlen=64))
    given_up: bool = False


class Supervisor:
    def __init__(self, cfg: CollectConfig, credentials: tuple[str, str] | None, progress: bool = True):
        self.cfg = cfg
        self.credentials = credentials
        self.progress = progress
        self.ctx = mp.get_context("spawn")
        self.shared = Shared(
            stop=self.ctx.RawValue("b", 0),
            saved=self.ctx.RawValue("i", 0),
            cooldown_until=self.ctx.RawValue("d", 0.0),
            max_rounds=-1 if cfg.max_rounds is None else cfg.max_rounds,
            lock_path=str(cfg.state_dir / "shared.lock"),
        )
        self.slots = [Slot(i) for i in range(cfg.workers)]
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.last_error: dict[str, str] = {}
        self.stop_reason = None

    def start(self, slot: Slot) -> None:
        if slot.events is not None:  # what the last one said before it died still counts
            while self._drain_one(slot):
                pass
            if slot.events is not None:
                slot.events.close()
        slot.events, writer = self.ctx.Pipe(duplex=False)
        slot.proc = self.ctx.Process(
            target=worker_main,
            args=(slot.idx, self.cfg.to_dict(), self.credentials, writer, self.shared),
            name=f"collect-worker-{slot.idx}",
            daemon=True,
        )
        slot.proc.start()
        writer.close()  # the worker holds the only write end: its death reads as EOF here
        slot.last_seen = time.monotonic()
        slot.starts.append(slot.last_seen)

    def restart(self, slot: Slot, why: str) -> None:
        self.errors[why] += 1
        recent = [t for t in slot.starts if t > time.monotonic() - 60]
        if len(recent) >= self.cfg.max_restarts_per_min:
            slot.given_up = True
            self.errors["worker_given_up"] += 1
            return
        self.counts["worker_restarts"] += 1
        self.start(slot)

    def handle(self, event: tuple) -> None:
        idx, kind, *rest = event
        self.slots[idx].last_seen = time.monotonic()
        if kind == "round":
            self.counts["rounds_played"] += 1
            self.counts[f"rounds_{rest[0]}"] += 1
            if rest[0] == "saved":
                self.bar.update(1)
        elif kind == "game":
            self.counts["games_started"] += 1
        elif kind == "game_done":
            self.counts[f"games_{rest[1].replace(' ', '_')}"] += 1
        elif kind == "error":
            self.errors[rest[0]] += 1
            self.last_error[rest[0]] = rest[1]
        elif kind == "browser":
            self.counts["browser_restarts" if rest[0] == "restart" else "browser_launches"] += 1
        elif kind == "fatal":
            self.errors["fatal"] += 1
            self.last_error["fatal"] = rest[0]
            self.stop(f"fatal: {rest[0]}")

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.shared.stop.value = 1

    def _drain_one(self, slot: Slot) -> bool:
        """Handle one waiting event of this worker; False when there is none or its pipe has ended."""
        try:
            if not slot.events.poll():
                return False
            self.handle(slot.events.recv())
            return True
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            slot.events.close()  # the worker is gone, or died mid-message; watch() restarts it
            slot.events = None
            return False

    def receive(self, timeout: float) -> int:
        """Handle what the workers said within `timeout`; returns how many events there were."""
        pipes = {s.events: s for s in self.slots if s.events is not None}
        return sum(self._drain_one(pipes[conn]) for conn in wait(list(pipes), timeout))

    def watch(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.given_up or slot.proc is None:
                continue
            if not slot.proc.is_alive():
                if not self.shared.stop.value:
                    self.restart(slot, "worker_crash")
                else:
                    slot.proc = None
            elif now - slot.last_seen > self.cfg.timeouts.watchdog_s:
                kill_tree(slot.proc.pid)
                slot.proc.join(5)
                if self.shared.stop.value:
                    slot.proc = None
                    self.errors["worker_hung"] += 1
                else:
                    self.restart(slot, "worker_hung")
        if all(s.given_up for s in self.slots):
            self.stop("every worker kept failing")

    def run(self) -> dict:
        cfg = self.cfg
        started, t0 = datetime.now(UTC), time.monotonic()
        store = PairStore(cfg.pairs_dir)
        cleaned = store.clean()
        existing = store.count()
        Claims(cfg.state_dir / "claims").clear()
        stop_file = cfg.state_dir / STOP_FILE
        stop_file.unlink(missing_ok=True)  # a request meant for an earlier run
        session = ensure_session(cfg, self.credentials)
        deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes else None
        self.bar = bar = tqdm(total=cfg.max_rounds, unit="round", desc=f"collect {cfg.mode}", disable=not self.progress,
                   dynamic_ncols=True, smoothing=0.1)
        grace_until = None
        try:
            for slot in self.slots:  # in the try: an interrupt now still stops the ones started
                self.start(slot)
            while True:
                events = self.receive(timeout=0.5)
                if cfg.max_rounds is not None and self.shared.saved.value >= cfg.max_rounds:
                    self.stop("round budget reached")
                if deadline and time.monotonic() >= deadline:
                    self.stop("time budget reached")
                if stop_file.exists():
                    self.stop("stop file")
                self.watch()
                alive = [s for s in self.slots if s.proc is not None and s.proc.is_alive()]
                bar.set_postfix_str(
                    f"workers {len(alive)} games {self.counts['games_started']} errors {sum(self.errors.values())}",
                    refresh=False,
                )
                if self.shared.stop.value:
                    grace_until = grace_until or time.monotonic() + cfg.timeouts.render_s + 2 * cfg.timeouts.action_s
                    if not alive and not events:
                        break
                    if time.monotonic() > grace_until:
                        for s in alive:
                            kill_tree(s.proc.pid)
                        self.errors["worker_killed_at_stop"] += len(alive)
                        break
        except KeyboardInterrupt:
            self.stop("interrupted")
            for s in self.slots:
                if s.proc is not None and s.proc.is_alive():
                    s.proc.join(cfg.timeouts.action_s)
                    if s.proc.is_alive():
                        kill_tree(s.proc.pid)
        finally:
            bar.close()
        self.stop("finished")  # only sets a reason if none was set
        elapsed = time.monotonic() - t0
        saved = self.counts["rounds_saved"]
        summary = {
            "started": started.isoformat(timespec="seconds"),
            "elapsed_s": round(elapsed, 1),
            "stop_reason": self.stop_reason,
            "base_url": cfg.base_url,
            "mode": cfg.mode,
            "workers": cfg.workers,
            "session": session,
            "pairs_dir": str(cfg.pairs_dir),
            "pairs_before": existing,
            "pairs_after": store.count(),
            "images_saved": saved,
            "rounds_played": self.counts["rounds_played"],
            "rounds_per_min": round(saved / (elapsed / 60), 2) if elapsed > 0 else 0.0,
            "counts": dict(sorted(self.counts.items())),
            "errors": dict(sorted(self.errors.items())),
            "last_error": self.last_error,
            "cleaned_at_start": cleaned,
        }
        return summary


def run_collect(cfg: CollectConfig, credentials: tuple[str, str] | None = None, progress: bool = True,
                summary_path: Path | None = None) -> dict:
    """Collect until the budget is spent; returns the summary, also written as JSON."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(cfg.state_dir / "run.lock"):
        summary = Supervisor(cfg, credentials, progress).run()
    path = Path(summary_path) if summary_path else cfg.state_dir / "summary.json"
    write_atomic(path, (json.dumps(summary, indent=2) + "\n").encode())
    summary["summary_path"] = str(path)
    return summary
