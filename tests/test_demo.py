"""`make demo` (python -m demo) end to end, headless: the companion, the practice site and Chromium with
the extension come up, one round is played, the screenshots exist and the overlay answered; Ctrl-C (a
SIGINT to the whole process group, as a terminal sends it) stops every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from paths import ROOT
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian /usr/bin/chromium"),
    pytest.mark.skipif(not (ROOT / "companion" / "models" / "default" / "bundle.json").is_file(),
                       reason="the demo serves the bundled default model"),
]


def demo_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}  # headless by itself
    return env | {"PYTHONUNBUFFERED": "1"}


def descendants(pid: int) -> set[int]:
    """Every process below pid (from /proc's parent links)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parent.items() if pp == p} - found
        found |= kids
        todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_open(url: str) -> bool:
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


def test_demo_plays_a_round_headless(tmp_path):
    out = tmp_path / "shots"
    run = subprocess.run([sys.executable, "-m", "demo", "--out", str(out)], cwd=ROOT, env=demo_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((out / "demo.json").read_text())
    assert set(summary["screenshots"]) == {"round", "result", "next", "web_ui"}
    for path in summary["screenshots"].values():
        assert path in run.stdout                                   # printed for the newcomer
        with Image.open(path) as im:
            assert im.size == (1280, 800) and sum(1 for n in im.convert("L").resize((64, 40)).histogram() if n) > 20  # not blank
    # the overlay answered the first round, and again for the next one
    for state in (summary["overlay"], summary["next_round"]):
        assert state["visible"] and len(state["countries"]) >= 3
        assert all(c["name"] and c["p"].endswith("%") for c in state["countries"])
    assert summary["next_round"]["round"] != summary["overlay"]["round"]
    top = summary["overlay"]["countries"][0]
    assert f"the overlay answered: {top['name']} {top['p']}" in run.stdout
    assert run.stdout.rstrip().endswith("demo: stopped")


def test_ctrl_c_stops_everything(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "demo", "--headless", "--stay", "--out", str(tmp_path)], cwd=ROOT,
                            env=demo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines, started = [], set()
    try:
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert any("running; Ctrl-C" in ln for ln in lines), "".join(lines)
        urls = re.findall(r"on (http://127\.0\.0\.1:\d+)", "".join(lines))
        assert len(urls) == 2 and all(port_open(u) for u in urls)
        started = descendants(proc.pid)
        assert len(started) >= 4, started                           # companion, site, driver, Chromium (and its helpers)
        os.killpg(proc.pid, signal.SIGINT)                          # the terminal's Ctrl-C
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(lines) + rest
        assert rest.rstrip().endswith("demo: stopped")
        assert not any(port_open(u) for u in urls)
        deadline = time.monotonic() + 10
        while (left := {p for p in started if alive(p)}) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, left
    finally:
        for p in {proc.pid} | started:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        proc.wait(10)
