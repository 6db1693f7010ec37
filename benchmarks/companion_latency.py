"""Companion latency and throughput on real 1280×720 JPEG frames, against the pattern of existing bots.

Ours: `python -m companion serve` (uvicorn on a loopback socket, ONNX Runtime) and real websocket
clients sending binary frames; round-trip p50/p95/p99 with 1 client, frames/s with 1 and 8 clients,
8 clients each sending at the extension's maximum rate (2 frames/s: p95 of the answered frames, and
how many were superseded by a newer frame of their round), 50 clients with 4 frames in flight each
(overload: the newest frame wins), server RSS. Reference, in the same run on the same frames: the usual bot pattern, an HTTP POST of
a base64 data URL to a FastAPI server running a torch eager model of the bundle's backbone (timm,
random weights: timing only), centre-cropped to one 224-ish tile as those bots do. Ends with one JSON line.

    python benchmarks/companion_latency.py [--model companion/models/default] [--frames 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "tests" / "fixtures" / "images"
READY = re.compile(r"Lost & Found companion on http://127\.0\.0\.1:(\d+)")
TOKEN = "bench-token"


def make_frames(n: int) -> list[bytes]:
    """Real street-view fixtures upscaled to 1280×1280 and centre-cropped to a 1280×720 game frame."""
    frames = []
    for path in sorted(FIXTURES.glob("*.jpg"))[:n]:
        img = Image.open(path).convert("RGB").resize((1280, 1280), Image.BICUBIC).crop((0, 280, 1280, 1000))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        frames.append(buf.getvalue())
    return frames


def pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs)
    return {f"p{q}": round(float(np.percentile(a, q)), 2) for q in (50, 95, 99)}


def rss_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1), "peak_rss_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1)}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process: unlike wall time, not inflated by other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(cmd: list[str], env: dict, pattern: re.Pattern) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if m := pattern.search(line):
            return proc, int(m.group(1))
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise RuntimeError(f"server did not start: {' '.join(cmd)}")


def frame_msg(image: bytes, round_id: str, i: int) -> bytes:
    header = json.dumps({"round": round_id, "frame": i}).encode()
    return struct.pack(">I", len(header)) + header + image


async def ws_client(port: int, frames: list[bytes], n: int, cid: int) -> tuple[list[float], list[float]]:
    from websockets.asyncio.client import connect

    rtt, server_ms = [], []
    async with connect(f"ws://127.0.0.1:{port}/ws?token={TOKEN}", max_size=None, ping_interval=None) as ws:
        for i in range(n):
            t0 = time.perf_counter()
            await ws.send(frame_msg(frames[(cid + i) % len(frames)], f"c{cid}-r{i // 10}", i))  # 10 frames a round
            reply = json.loads(await ws.recv())
            rtt.append((time.perf_counter() - t0) * 1000)
            if reply["type"] != "prediction":
                raise RuntimeError(f"unexpected reply {reply}")
            server_ms.append(reply["latency_ms"])
    return rtt, server_ms


async def ws_run(port: int, frames: list[bytes], clients: int, per_client: int) -> dict:
    t0 = time.perf_counter()
    results = await asyncio.gather(*(ws_client(port, frames, per_client, c) for c in range(clients)))
    wall = time.perf_counter() - t0
    rtt = [x for r, _ in results for x in r]
    server = [x for _, s in results for x in s]
    return {"clients": clients, "frames": len(rtt), "fps": round(len(rtt) / wall, 2), "rtt_ms": pct(rtt),
            "server_ms": pct(server), "mean_ms": round(statistics.fmean(rtt), 2)}


async def stream_client(port: int, frames: list[bytes], n: int, cid: int, round_every: int, *,
                        rate: float | None = None, offset: float = 0.0, window: int | None = None) -> dict:
    """Send n frames without waiting for each answer, reading them as they come: at `rate` per second
    from `offset` (as the extension does), or with `window` frames in flight."""
    from websockets.asyncio.client import connect

    sent_at: dict[int, float] = {}
    rtt: list[float] = []
    kinds = {"prediction": 0, "superseded": 0, "error": 0}
    in_flight = asyncio.Semaphore(window) if window else None
    async with connect(f"ws://127.0.0.1:{port}/ws?token={TOKEN}", max_size=None, ping_interval=None) as ws:
        async def reader():
            for _ in range(n):
                reply = json.loads(await ws.recv())
                kinds[reply["type"]] += 1
                if reply["type"] == "prediction":
                    rtt.append((time.perf_counter() - sent_at[reply["frame"]]) * 1000)
                if in_flight:
                    in_flight.release()

        read = asyncio.create_task(reader())
        start = time.perf_counter() + offset
        for i in range(n):
            if in_flight:
                await in_flight.acquire()
            else:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent_at[i] = time.perf_counter()
            await ws.send(frame_msg(frames[(cid + i) % len(frames)], f"s{cid}-r{i // round_every}", i))
        await asyncio.wait_for(read, timeout=600)
    return {"rtt": rtt, **kinds}


def _summary(results: list[dict], clients: int, n: int) -> dict:
    rtt = [x for r in results for x in r["rtt"]]
    return {"clients": clients, "sent": clients * n, "answered": len(rtt),
            "superseded": sum(r["superseded"] for r in results), "errors": sum(r["error"] for r in results),
            "rtt_ms": pct(rtt) if rtt else None}


async def window_run(port: int, frames: list[bytes], clients: int, window: int, n: int) -> dict:
    results = await asyncio.gather(*(stream_client(port, frames, n, c, n, window=window) for c in range(clients)))
    return {**_summary(results, clients, n), "in_flight_per_client": window}


async def paced_run(port: int, frames: list[bytes], clients: int, rate: float, seconds: float) -> dict:
    n = int(rate * seconds)
    # the clients' frames are spread over the interval, like players who did not start together
    results = await asyncio.gather(*(stream_client(port, frames, n, c, 20, rate=rate, offset=c / (rate * clients))
                                     for c in range(clients)))
    return {**_summary(results, clients, n), "rate_per_client": rate}


# ---- the reference: base64 data URL → torch eager (the pattern of existing bots) ----

def reference_app(backbone: str, n_classes: int, size: int):
    import timm
    import torch

    torch.set_num_threads(2)
    try:
        model = timm.create_model(backbone, pretrained=False, num_classes=n_classes, img_size=size)
    except TypeError:  # CNNs take any size and have no img_size argument
        model = timm.create_model(backbone, pretrained=False, num_classes=n_classes)
    model.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request):
        body = await request.json()
        data = base64.b64decode(body["image"].split(",", 1)[1])
        img = Image.open(io.BytesIO(data)).convert("RGB")
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((size, size), Image.BILINEAR)
        x = (torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255 - mean) / std
        with torch.no_grad():
            p = model(x[None]).softmax(-1)[0]
        top = p.topk(5)
        return {"top": [[int(i), float(v)] for v, i in zip(top.values, top.indices, strict=True)]}

    return app


def serve_reference(args) -> None:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = reference_app(args.backbone, args.classes, args.size)
    print(f"reference on 127.0.0.1:{port}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def reference_run(port: int, frames: list[bytes], n: int) -> dict:
    import httpx

    urls = ["data:image/jpeg;base64," + base64.b64encode(f).decode() for f in frames]
    rtt = []
    with httpx.Client(timeout=120) as client:
        t0 = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            client.post(f"http://127.0.0.1:{port}/predict", json={"image": urls[i % len(urls)]}).raise_for_status()
            rtt.append((time.perf_counter() - t) * 1000)
        wall = time.perf_counter() - t0
    return {"clients": 1, "frames": n, "fps": round(n / wall, 2), "rtt_ms": pct(rtt), "mean_ms": round(statistics.fmean(rtt), 2)}


def main() -> int:
    from companion.config import DEFAULT_BUNDLE
    from runtime.bundle import load_meta

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--frames", type=int, default=200, help="frames for the 1-client run")
    ap.add_argument("--frames-per-client", type=int, default=40, help="frames per client in the 8-client run")
    ap.add_argument("--paced-seconds", type=float, default=30, help="length of the 8 clients × 2 frames/s run")
    ap.add_argument("--window-frames", type=int, default=20, help="frames per client in the 50 clients × 4 in flight run")
    ap.add_argument("--reference-frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--backbone", help=argparse.SUPPRESS)
    ap.add_argument("--classes", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_server:
        serve_reference(args)
        return 0

    meta = load_meta(args.model)
    frames = make_frames(16)
    print(f"model {meta.model_id} ({meta.backbone}, {meta.input.size}px, {len(meta.cells)} cells); "
          f"{len(frames)} frames 1280x720, mean {np.mean([len(f) for f in frames]) / 1024:.0f} KiB; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    out: dict = {"model": meta.model_id, "backbone": meta.backbone, "input_size": meta.input.size,
                 "cells": len(meta.cells), "cpu_count": os.cpu_count(), "threads": args.threads}

    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, LF_CONFIG_DIR=f"{home}/config", LF_DATA_DIR=f"{home}/data", PYTHONUNBUFFERED="1")
        proc, port = start([sys.executable, "-m", "companion", "serve", "--model", str(args.model), "--port", "0",
                            "--token", TOKEN, "--threads", str(args.threads), "--rate-limit", "100000"], env, READY)
        try:
            out["server_rss_idle"] = rss_mb(proc.pid)
            asyncio.run(ws_run(port, frames, 1, 10))  # warm the connection path
            c0 = cpu_s(proc.pid)
            out["ours_1_client"] = asyncio.run(ws_run(port, frames, 1, args.frames))
            out["ours_1_client"]["server_cpu_ms_per_frame"] = round((cpu_s(proc.pid) - c0) * 1000 / args.frames, 2)
            print("ours, 1 client:", json.dumps(out["ours_1_client"]), flush=True)
            out["ours_8_clients"] = asyncio.run(ws_run(port, frames, 8, args.frames_per_client))
            print("ours, 8 clients:", json.dumps(out["ours_8_clients"]), flush=True)
            out["ours_8_clients_2fps"] = asyncio.run(paced_run(port, frames, 8, 2.0, args.paced_seconds))
            print("ours, 8 clients at 2 frames/s:", json.dumps(out["ours_8_clients_2fps"]), flush=True)
            out["ours_50_clients_4_in_flight"] = asyncio.run(window_run(port, frames, 50, 4, args.window_frames))
            print("ours, 50 clients, 4 frames in flight each:", json.dumps(out["ours_50_clients_4_in_flight"]), flush=True)
            out["server_rss"] = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)

        backbone = meta.backbone if meta.backbone != "tiny" else "mobilenetv2_100"
        proc, port = start([sys.executable, __file__, "--reference-server", "--backbone", backbone,
                            "--classes", str(len(meta.cells)), "--size", str(meta.input.size)],
                           env, re.compile(r"reference on 127\.0\.0\.1:(\d+)"))
        try:
            reference_run(port, frames, 3)  # warm up
            c0 = cpu_s(proc.pid)
            out["reference_1_client"] = reference_run(port, frames, args.reference_frames)
            out["reference_1_client"]["server_cpu_ms_per_frame"] = round(
                (cpu_s(proc.pid) - c0) * 1000 / args.reference_frames, 2)
            out["reference_rss"] = rss_mb(proc.pid)
            print("reference (base64 POST, torch eager):", json.dumps(out["reference_1_client"]), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)

    ours, ref = out["ours_1_client"], out["reference_1_client"]
    out["speedup_p50"] = round(ref["rtt_ms"]["p50"] / ours["rtt_ms"]["p50"], 2)
    out["speedup_p95"] = round(ref["rtt_ms"]["p95"] / ours["rtt_ms"]["p95"], 2)
    out["cpu_ratio"] = round(ref["server_cpu_ms_per_frame"] / ours["server_cpu_ms_per_frame"], 2)
    out["load_average_end"] = round(os.getloadavg()[0], 2)
    paced = out["ours_8_clients_2fps"]["rtt_ms"]
    out["targets"] = {"p95_le_50ms": ours["rtt_ms"]["p95"] <= 50, "speedup_ge_3x": out["speedup_p50"] >= 3,
                      "paced_8x2fps_p95_le_500ms": paced is not None and paced["p95"] <= 500,
                      "rss_le_500mb": out["server_rss"]["peak_rss_mb"] <= 500}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
