"""Where the tests' inputs are, defined once; and the one way the tests stop a process they started."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "images"   # 32 real street-view images, each with its <id>.json
SHARED = Path(os.environ.get("LF_SHARED", ROOT.parent / "shared"))
STREETVIEW = SHARED / "data" / "streetview"
ADMIN1 = SHARED / "geo" / "ne_10m_admin_1_states_provinces.geojson.gz"


def stop_process(proc: subprocess.Popen, timeout: float, kill_timeout: float | None = None) -> None:
    """SIGTERM a still-running process, wait up to `timeout` seconds, then SIGKILL it and wait again."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(kill_timeout)
