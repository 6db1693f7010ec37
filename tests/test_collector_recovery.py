"""Crashes and kills: a killed browser, a frozen worker, a killed worker, a killed run — survived,
counted, and nothing already saved is lost or duplicated."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from dataprep.collect.supervisor import run_collect
from tests.collector_helpers import (
    CREDENTIALS,
    ROOT,
    browser_pids,
    check_pairs_against_site,
    fast_config,
    fingerprints,
    pairs,
    worker_pids,
)
from tests.geosite import GeoSite

pytestmark = pytest.mark.e2e


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_browser_frozen_worker_and_killed_worker_are_restarted(tmp_path):
    with GeoSite(seed=5) as site:
        cfg = fast_config(site.url, tmp_path / "collect", max_minutes=5.0)
        cfg.timeouts.watchdog_s = 20.0
        result = {}
        run = threading.Thread(target=lambda: result.update(run_collect(cfg, CREDENTIALS, progress=False)))
        run.start()
        try:
            count = lambda: len(pairs(cfg.pairs_dir)) if cfg.pairs_dir.is_dir() else 0  # noqa: E731
            wait_until(lambda: count() >= 1, 150, "a first pair")
            x, y = wait_until(lambda: len(worker_pids()) == 2 and worker_pids(), 10, "two workers")
            killed = wait_until(lambda: browser_pids(x), 10, "worker x's browser")[0]
            os.kill(killed, signal.SIGKILL)  # x must relaunch its browser by itself
            wait_until(lambda: set(browser_pids(x)) - {killed}, 90, "worker x to relaunch its browser")
            before = fingerprints(cfg.pairs_dir)
            os.kill(y, signal.SIGSTOP)  # y hangs: alive, silent; the watchdog must replace it
            y2 = wait_until(lambda: [p for p in worker_pids() if p not in (x, y)], 90, "y's replacement")[0]
            os.kill(y2, signal.SIGKILL)  # and y's replacement crashes: it must be replaced too
            wait_until(lambda: [p for p in worker_pids() if p not in (x, y, y2)], 60, "y2's replacement")
            done = count()
            wait_until(lambda: count() >= done + 2, 150, "two pairs after the worker kill")
        finally:
            (cfg.state_dir / "stop").touch()
            run.join(240)
        assert not run.is_alive()
        errors, counts = Counter(result["errors"]), Counter(result["counts"])
        assert result["stop_reason"] == "stop file", result
        assert errors.get("browser_crash", 0) + errors.get("page_error", 0) >= 1, result
        assert counts["browser_restarts"] >= 1 and errors["worker_hung"] >= 1 and errors["worker_crash"] >= 1, result
        assert counts["worker_restarts"] >= 2, result
        after = fingerprints(cfg.pairs_dir)
        assert {k: after[k] for k in before} == before  # nothing saved before the faults changed
        assert check_pairs_against_site(cfg.pairs_dir, site) == result["pairs_after"] >= 4
    assert browser_pids() == []  # no browser outlives the run


def test_a_killed_run_resumes_without_losing_or_duplicating_pairs(tmp_path):
    out = tmp_path / "collect"
    env = {**os.environ, "GEOGUESSR_EMAIL": CREDENTIALS[0], "GEOGUESSR_PASSWORD": CREDENTIALS[1]}

    def cli(site, rounds):
        return subprocess.Popen(
            [sys.executable, "-m", "dataprep", "collect", "--base-url", site.url, "--out", str(out),
             "--max-rounds", str(rounds), "--workers", "2", "--max-minutes", "4", "--no-progress",
             "--config", str(config_path)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    config_path = tmp_path / "collect.json"
    with GeoSite(seed=6) as first:
        cfg = fast_config(first.url, out)
        config_path.write_text(__import__("json").dumps({"viewport": list(cfg.viewport),
                                                          "timeouts": vars(cfg.timeouts)}))
        proc = cli(first, 50)
        try:
            wait_until(lambda: len(pairs(out / "pairs")) >= 3 if (out / "pairs").is_dir() else False, 200, "3 pairs")
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # no goodbye: workers, browsers and half-written files left behind
            proc.wait(30)
        wait_until(lambda: not browser_pids(proc.pid), 30, "the run's processes to go")
        kept = fingerprints(out / "pairs")
        first_games = {g.id: g for g in first.games.values()}

    # The same seed hands out the same game ids again: the resumed run meets rounds it already has.
    with GeoSite(seed=6) as second:
        proc = cli(second, 2)
        output, _ = proc.communicate(timeout=280)
        assert proc.returncode == 0, output
        summary = __import__("json").loads((out / "state" / "summary.json").read_text())
        assert summary["pairs_before"] == len(kept) // 2, output
        assert summary["images_saved"] == 2 and summary["pairs_after"] == len(kept) // 2 + 2, output
        assert summary["counts"].get("rounds_existing", 0) >= 1, output  # met again, skipped, not rewritten
        after = fingerprints(out / "pairs")
        assert {n: after[n] for n in kept} == kept
        # nothing half-written left, and no image without its JSON
        assert sorted(p.name for p in (out / "pairs").iterdir()) == sorted(after)
        # every pair matches the game it came from (games of the first run that the second did not replay
        # are checked against the first site)
        second.games.update({k: v for k, v in first_games.items() if k not in second.games})
        assert check_pairs_against_site(out / "pairs", second) == len(kept) // 2 + 2


def test_sigterm_while_signing_in_exits_cleanly(tmp_path):
    # A site that accepts connections and never answers: the run is stuck in its sign-in page load.
    held = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(64)], daemon=True).start()
        proc = subprocess.Popen(
            [sys.executable, "-m", "dataprep.collect", "--base-url", f"http://127.0.0.1:{server.getsockname()[1]}",
             "--out", str(tmp_path / "collect"), "--no-progress"],
            cwd=ROOT, env={**os.environ, "GEOGUESSR_EMAIL": CREDENTIALS[0], "GEOGUESSR_PASSWORD": CREDENTIALS[1]},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            wait_until(lambda: held, 60, "the browser to ask for the sign-in page")
            browsers = browser_pids(proc.pid)
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 143, output
        assert "interrupted by SIGTERM" in output and "Traceback" not in output, output
        assert browsers
        wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in browsers), 10, "its browser to be gone")
        assert not (tmp_path / "collect" / "state" / "storage_state.json").exists()
