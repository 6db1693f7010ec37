"""The companion's FastAPI app: websocket `/ws`, HTTP `/v1/*`, the web UI at `/`.

Any web page the player opens can try ws://127.0.0.1, so every request passes three gates: the
Host header must be a loopback name (defeats DNS rebinding), a browser Origin must be an extension
or the companion's own page, and frames and predictions need the pairing token.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from companion.engine import Engine, RoundPool
from companion.play import Play, mount_play
from companion.preprocess import ImageError, ImageTooLarge
from companion.protocol import PROTOCOL_VERSION, ClientControl, ErrorMessage, FrameHeader, Pong

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
EXTENSION_SCHEMES = ("chrome-extension", "moz-extension", "safari-web-extension")
MAX_HEADER_BYTES = 4096
CLOSE_UNAUTHORIZED = 4401  # application close code (4000-4999): the token was missing or wrong


@dataclass
class Settings:
    token: str
    host: str = "127.0.0.1"
    port: int = 8765                        # updated to the bound port once listening (port 0 picks one)
    max_frame_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 4096 * 4096           # a 4K frame is 8.3 Mpx
    rate_per_s: float = 30.0                # frames per second per connection, sustained
    rate_burst: int = 60
    max_rounds: int = 8                     # rounds remembered per connection (LRU)
    top_k: int = 5
    top_cells: int = 64
    workers: int = 2                        # decode/preprocess threads; model runs are serialized

    def host_ok(self, host_header: str | None) -> bool:
        """A loopback-bound server only answers to loopback names (DNS rebinding defence)."""
        if self.host not in LOOPBACK_NAMES:
            return True
        if not host_header:
            return False
        name = urlsplit("//" + host_header).hostname
        return name in LOOPBACK_NAMES

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin: not a browser page (a native client still needs the token)."""
        if origin is None:
            return True
        parts = urlsplit(origin)
        if parts.scheme in EXTENSION_SCHEMES:
            return True
        return parts.scheme == "http" and parts.hostname in LOOPBACK_NAMES | {self.host} and parts.port == self.port

    def token_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())


class TokenBucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.level, self.t = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.t) * self.rate)
        self.t = now
        if self.level >= 1:
            self.level -= 1
            return True
        return False


class FrameError(Exception):
    def __init__(self, code: str, message: str, frame: int | None = None):
        super().__init__(message)
        self.error = ErrorMessage(code=code, message=message, frame=frame)


def parse_frame(data: bytes, max_frame_bytes: int) -> tuple[FrameHeader, bytes]:
    """`uint32 BE N | N bytes JSON FrameHeader | image bytes` → (header, image bytes)."""
    if len(data) > max_frame_bytes:
        raise FrameError("too_large", f"frame is {len(data)} bytes, the limit is {max_frame_bytes}")
    if len(data) < 4:
        raise FrameError("bad_message", "a binary frame starts with a 4-byte big-endian header length")
    (n,) = struct.unpack(">I", data[:4])
    if n == 0 or n > MAX_HEADER_BYTES:
        raise FrameError("bad_header", f"header length {n} is outside 1..{MAX_HEADER_BYTES}")
    if 4 + n > len(data):
        raise FrameError("bad_header", f"header length {n} runs past the end of the {len(data)}-byte frame")
    try:
        header = FrameHeader.model_validate_json(data[4 : 4 + n])
    except ValidationError as e:
        raise FrameError("bad_header", f"invalid frame header: {_first_error(e)}") from None
    return header, data[4 + n :]


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ())) or "message"
    return f"{loc}: {err.get('msg', 'invalid')}"


def create_app(engine: Engine, settings: Settings, play: Play | None = None) -> FastAPI:
    pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="lf-infer")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="Lost & Found companion", version=str(PROTOCOL_VERSION), docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def log_probs_of(image: bytes):
        try:
            return engine.frame_log_probs(image, settings.max_pixels)
        except ImageTooLarge as e:
            raise FrameError("too_large", str(e)) from None
        except ImageError as e:
            raise FrameError("bad_image", str(e)) from None

    def answer_image(image: bytes, top_k: int):
        return engine.prediction(log_probs_of(image), top_k=top_k, top_cells=settings.top_cells)

    app.add_middleware(
        CORSMiddleware,
        allow_origin_regex=r"^(chrome|moz|safari-web)-extension://[A-Za-z0-9._-]+$",
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "X-LF-Token", "Content-Type"],
    )

    @app.middleware("http")
    async def gate(request: Request, call_next):
        if not settings.host_ok(request.headers.get("host")):
            return JSONResponse(_err("unauthorized", "Host is not a loopback name"), status_code=403)
        if not settings.origin_ok(request.headers.get("origin")):
            return JSONResponse(_err("unauthorized", "this Origin may not use the companion"), status_code=403)
        return await call_next(request)

    def authorized(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        return settings.token_ok(token or request.headers.get("x-lf-token") or request.query_params.get("token"))

    @app.get("/v1/health")
    async def health():
        return {"status": "ok", "protocol": PROTOCOL_VERSION, "model": engine.model_id}

    @app.get("/v1/model")
    async def model():
        m = engine.meta
        return {
            "model": m.model_id, "backbone": m.backbone, "created": m.created, "input": m.input.model_dump(),
            "countries": [c.model_dump() for c in m.countries], "regions": [r.model_dump() for r in m.regions],
            "metrics": m.metrics, "cells": engine.cells_geojson,
            "prior": engine.prior, "priors": sorted(m.calibrations), "temperature": engine.temperature,
        }

    @app.post("/v1/predict")
    async def predict(request: Request, top_k: int | None = None):
        t0 = time.perf_counter()
        if not authorized(request):
            return JSONResponse(_err("unauthorized", "missing or wrong pairing token"), status_code=401)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_frame_bytes:
            return JSONResponse(_err("too_large", f"body is {declared} bytes, the limit is {settings.max_frame_bytes}"), status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.max_frame_bytes:
                return JSONResponse(_err("too_large", f"body is over {settings.max_frame_bytes} bytes"), status_code=413)
        k = max(1, min(top_k or settings.top_k, 50))
        try:
            pred = await run(answer_image, bytes(body), k)
        except FrameError as e:
            return JSONResponse(e.error.model_dump(), status_code=413 if e.error.code == "too_large" else 400)
        pred.latency_ms = round((time.perf_counter() - t0) * 1000, 3)
        return Response(pred.model_dump_json(), media_type="application/json")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        if not settings.host_ok(websocket.headers.get("host")) or not settings.origin_ok(websocket.headers.get("origin")):
            await websocket.close(code=1008)  # before accept: the handshake is refused with HTTP 403
            return
        await websocket.accept()
        if not settings.token_ok(websocket.query_params.get("token")):
            await _send(websocket, ErrorMessage(code="unauthorized", message="missing or wrong pairing token (?token=...)"))
            await websocket.close(code=CLOSE_UNAUTHORIZED, reason="unauthorized")
            return
        rounds = RoundPool(settings.max_rounds)
        bucket = TokenBucket(settings.rate_per_s, settings.rate_burst)
        try:
            while True:
                msg = await websocket.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                t0 = time.perf_counter()
                if not bucket.take():
                    reply = ErrorMessage(code="rate_limited", message=f"more than {settings.rate_per_s:g} messages/s")
                elif msg.get("bytes") is not None:
                    reply = await _frame_reply(msg["bytes"], rounds, t0)
                else:
                    reply = _control_reply(msg.get("text") or "", rounds)
                if not await _send(websocket, reply):
                    break
        except WebSocketDisconnect:
            pass

    def answer_frame(header: FrameHeader, image: bytes, rounds: RoundPool):
        # all in a worker thread: decoding, the model and the posterior would each stall the event loop
        pooled, n = rounds.add(header.round, log_probs_of(image))  # a connection's frames are handled one at a time
        return engine.prediction(pooled, top_k=header.top_k or settings.top_k, top_cells=settings.top_cells,
                                 round=header.round, frame=header.frame, frames=n)

    async def _frame_reply(data: bytes, rounds: RoundPool, t0: float):
        frame = None
        try:
            header, image = parse_frame(data, settings.max_frame_bytes)
            frame = header.frame
            pred = await run(answer_frame, header, image, rounds)
            pred.latency_ms = round((time.perf_counter() - t0) * 1000, 3)
            return pred
        except FrameError as e:
            e.error.frame = frame
            return e.error
        except Exception as e:  # noqa: BLE001 - one bad frame must not end the player's session
            return ErrorMessage(code="internal", message=f"{type(e).__name__}: {e}", frame=frame)

    def _control_reply(text: str, rounds: RoundPool):
        try:
            ctl = ClientControl.model_validate_json(text)
        except ValidationError as e:
            return ErrorMessage(code="bad_message", message=f"text messages are ClientControl JSON: {_first_error(e)}")
        if ctl.type == "reset":
            rounds.reset(ctl.round)
        return Pong()

    @app.get("/", response_class=HTMLResponse)
    async def index():
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        # the page shows the token so the player can pair the extension; only loopback pages can read it
        return page.replace("__LF_TOKEN__", html.escape(settings.token, quote=True))

    if play is not None:
        mount_play(app, play, authorized, run)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app


def _err(code: str, message: str) -> dict:
    return ErrorMessage(code=code, message=message).model_dump()


async def _send(websocket: WebSocket, reply) -> bool:
    """Send a reply; False when the client has gone (an abrupt disconnect is not an error)."""
    try:
        await websocket.send_text(reply.model_dump_json())
        return True
    except (WebSocketDisconnect, RuntimeError, OSError):
        return False
