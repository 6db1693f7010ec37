"""Shared fixtures of the companion's tests: model bundles and real `python -m companion serve` processes.

The main bundle is `$LF_TEST_BUNDLE`, else the bundled default model, else a development bundle
built from the fixtures (random mobilenetv2_100). The load and fuzz tests use the tiny bundle:
they exercise the server with thousands of frames, not the network.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from paths import FIXTURES, ROOT, stop_process
from PIL import Image

from companion.config import DEFAULT_BUNDLE

FIXTURE_IMAGES = sorted(FIXTURES.glob("*.jpg"))
READY = re.compile(r"Lost & Found companion on http://127\.0\.0\.1:(\d+) \(token: (\S+)\)")


def _main_bundle_path() -> Path:
    if os.environ.get("LF_TEST_BUNDLE"):
        return Path(os.environ["LF_TEST_BUNDLE"])
    if (DEFAULT_BUNDLE / "bundle.json").is_file():
        return DEFAULT_BUNDLE
    from companion_devbundle import build

    return build(ROOT / "work" / "dev-bundle", "mobilenetv2_100")


@pytest.fixture(scope="session")
def main_bundle() -> Path:
    return _main_bundle_path()


@pytest.fixture(scope="session")
def tiny_bundle() -> Path:
    from companion_devbundle import build

    return build(ROOT / "work" / "dev-tiny", "tiny")


@dataclass
class CompanionServer:
    proc: subprocess.Popen
    port: int
    token: str
    home: Path
    bundle: Path
    log: list[str]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, token: str | None = None) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={self.token if token is None else token}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, 10, kill_timeout=5)


def start_server(bundle: Path, home: Path, *extra: str, token: str | None = "test-token-123",
                 max_fds: int | None = None) -> CompanionServer:
    """`python -m companion serve` on a free loopback port; returns once it prints its ready line.
    `max_fds` lowers the process's open-file limit (RLIMIT_NOFILE)."""
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LF_CONFIG_DIR=str(home / "config"), LF_DATA_DIR=str(home / "data"), PYTHONUNBUFFERED="1")
    env.pop("LF_TOKEN", None)
    cmd = [sys.executable, "-m", "companion", "serve", "--model", str(bundle), "--host", "127.0.0.1", "--port", "0",
           "--play", str(FIXTURES), *extra]
    if token is not None:
        cmd += ["--token", token]
    def limit_fds():
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (max_fds, max_fds))

    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=limit_fds if max_fds else None)
    log: list[str] = []
    found: list[re.Match] = []

    def pump():
        for line in proc.stdout:
            log.append(line)
            if not found and (m := READY.search(line)):
                found.append(m)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 120
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("companion did not start:\n" + "".join(log))
        time.sleep(0.05)
    server = CompanionServer(proc, int(found[0].group(1)), found[0].group(2), home, bundle, log)
    atexit.register(server.stop)
    return server


_servers: dict[str, CompanionServer] = {}


def _shared_server(name: str, bundle: Path, tmp_path_factory, *extra: str) -> CompanionServer:
    # one process per kind for the whole session, however many test modules import the fixture
    s = _servers.get(name)
    if s is None or not s.alive():
        s = _servers[name] = start_server(bundle, tmp_path_factory.mktemp(f"home-{name}"), *extra)
    return s


@pytest.fixture(scope="session")
def main_server(main_bundle, tmp_path_factory) -> CompanionServer:
    return _shared_server("main", main_bundle, tmp_path_factory, "--rate-limit", "200")


@pytest.fixture(scope="session")
def tiny_server(tiny_bundle, tmp_path_factory) -> CompanionServer:
    return _shared_server("tiny", tiny_bundle, tmp_path_factory, "--rate-limit", "100000")


def server_memory_kb(server: CompanionServer) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of the server process, from /proc/<pid>/status, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


def frame_bytes(image: bytes, round_id: str = "r", frame: int = 0, heading: float | None = None, raw_header: bytes | None = None) -> bytes:
    header = raw_header if raw_header is not None else json.dumps({"v": 1, "round": round_id, "frame": frame, "heading": heading}).encode()
    return struct.pack(">I", len(header)) + header + image


def jpeg_bytes(path: Path, size: tuple[int, int] | None = None, quality: int = 90) -> bytes:
    img = Image.open(path).convert("RGB")
    if size:
        img = img.resize(size, Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
