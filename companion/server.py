"""The companion's FastAPI app: websocket `/ws`, HTTP `/v1/*`, the web UI at `/`.

Any web page the player opens can try ws://127.0.0.1, so every request passes three gates: the
Host header must be a loopback name (defeats DNS rebinding), a browser Origin must be an extension
or the companion's own page, and frames and predictions need the pairing token.

Under load the newest view wins: each websocket reads ahead into an `Inbox`, a frame still waiting
for the model is answered `Superseded` when a newer frame of its round arrives, and connections take
turns at the model one frame at a time, so a player sees an answer for where they are looking now.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import struct
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from companion.engine import Engine, RoundPool
from companion.play import Play, mount_play
from companion.protocol import PROTOCOL_VERSION, ClientControl, ErrorMessage, FrameHeader, Pong, Superseded
from runtime.preprocess import ImageError, ImageTooLarge

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
EXTENSION_SCHEMES = ("chrome-extension", "moz-extension", "safari-web-extension")
MAX_HEADER_BYTES = 4096
MAX_JSON_BODY = 16 * 1024  # Play's request bodies are a few hundred bytes
MAX_INBOX = 8              # messages read from one websocket and not yet answered; then reading waits
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
    workers: int = 2                        # decode/preprocess threads (and turns at the model); model runs are serialized
    max_connections: int = 128              # open HTTP/websocket connections (see companion.transport)
    header_timeout: float = 10.0            # seconds to send a whole request, or to idle between requests
    body_timeout: float = 30.0              # seconds to send a request body

    def host_ok(self, host_header: str | None) -> bool:
        """A loopback-bound server only answers to loopback names (DNS rebinding defence)."""
        if self.host not in LOOPBACK_NAMES:
            return True
        if not host_header:
            return False
        parts = _split("//" + host_header)
        return parts is not None and parts.hostname in LOOPBACK_NAMES

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin: not a browser page (a native client still needs the token)."""
        if origin is None:
            return True
        parts = _split(origin)
        if parts is None:
            return False
        if parts.scheme in EXTENSION_SCHEMES:
            return True
        return parts.scheme == "http" and parts.hostname in LOOPBACK_NAMES | {self.host} and parts.port == self.port

    def token_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())


def _split(url: str):
    """urlsplit, None where the URL is malformed (`[evil`, a port that is not a number or out of range)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises
        return parts
    except ValueError:
        return None


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


class BodyError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused past `limit` bytes (declared or sent) or `timeout` seconds."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, "too_large", f"body is {declared} bytes, the limit is {limit}")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise BodyError(413, "too_large", f"body is over {limit} bytes")
    except TimeoutError:
        raise BodyError(408, "bad_message", f"the body took more than {timeout:g} s") from None
    except ClientDisconnect:
        raise BodyError(400, "bad_message", "the client left before sending the whole body") from None
    return bytes(body)


@dataclass
class Inbound:
    """One message read from a websocket, waiting for its reply (replies go out in arrival order)."""

    reply: BaseModel | None = None
    header: FrameHeader | None = None   # a frame that needs the model
    image: bytes | None = None
    reset: ClientControl | None = None  # a reset, applied in order with the frames
    t0: float = 0.0
    started: bool = False               # its inference has begun: it can no longer be superseded


@dataclass
class Inbox:
    """A connection's unanswered messages. A frame supersedes the waiting frames of its round."""

    items: deque = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    left: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, item: Inbound) -> None:
        if item.header is not None:
            for older in self.items:
                if older.header is not None and older.header.round == item.header.round and older.reply is None \
                        and not older.started:
                    older.reply = Superseded(round=older.header.round, frame=older.header.frame, by=item.header.frame)
                    older.image = None
        self.items.append(item)
        self.arrived.set()

    async def room(self, max_bytes: int) -> None:
        while len(self.items) >= MAX_INBOX or sum(len(i.image or b"") for i in self.items) >= max_bytes:
            self.left.clear()
            await self.left.wait()

    async def head(self) -> Inbound:
        while not self.items:
            self.arrived.clear()
            await self.arrived.wait()
        return self.items[0]

    def pop(self) -> Inbound:
        self.left.set()
        return self.items.popleft()


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ())) or "message"
    return f"{loc}: {err.get('msg', 'invalid')}"


def create_app(engine: Engine, settings: Settings, play: Play | None = None) -> FastAPI:
    pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="lf-infer")
    # turns at the model, first come first served; a connection waits for one turn at a time, so
    # every connection gets its share however many frames it sends
    turns = asyncio.Semaphore(settings.workers)

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

    @app.exception_handler(BodyError)
    async def body_error(_request: Request, e: BodyError):
        return JSONResponse(_err(e.code, str(e)), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, e: RequestValidationError):
        err = e.errors()[0] if e.errors() else {}
        loc = ".".join(str(x) for x in err.get("loc", ())) or "request"
        return JSONResponse(_err("bad_message", f"{loc}: {err.get('msg', 'invalid')}"), status_code=400)

    def authorized(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        return settings.token_ok(token or request.headers.get("x-lf-token") or request.query_params.get("token"))

    async def read_json(request: Request, model: type[BaseModel]):
        """A small JSON body as `model` (None when empty); read only after the token check."""
        body = await read_body(request, MAX_JSON_BODY, settings.body_timeout)
        if not body.strip():
            return None
        try:
            return model.model_validate_json(body)
        except ValidationError as e:
            raise BodyError(400, "bad_message", f"invalid body: {_first_error(e)}") from None

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
    async def predict(request: Request, top_k: int | None = Query(None, ge=1, le=50)):
        t0 = time.perf_counter()
        if not authorized(request):
            return JSONResponse(_err("unauthorized", "missing or wrong pairing token"), status_code=401)
        body = await read_body(request, settings.max_frame_bytes, settings.body_timeout)
        try:
            async with turns:
                pred = await run(answer_image, body, top_k or settings.top_k)
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
        inbox = Inbox()
        tasks = {asyncio.create_task(read_inbox(websocket, inbox, TokenBucket(settings.rate_per_s, settings.rate_burst))),
                 asyncio.create_task(answer_inbox(websocket, inbox, RoundPool(settings.max_rounds)))}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)  # the client left, or stopped taking replies
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with suppress(asyncio.CancelledError):
                    await t

    async def read_inbox(websocket: WebSocket, inbox: Inbox, bucket: TokenBucket):
        """Read messages as they come (so a newer frame can supersede a waiting one), a few at most."""
        while True:
            await inbox.room(2 * settings.max_frame_bytes)
            try:
                msg = await websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if msg["type"] == "websocket.disconnect":
                return
            t0 = time.perf_counter()
            if not bucket.take():
                item = Inbound(reply=ErrorMessage(code="rate_limited", message=f"more than {settings.rate_per_s:g} messages/s"))
            elif msg.get("bytes") is not None:
                item = _frame_item(msg["bytes"], t0)
            else:
                item = _control_item(msg.get("text") or "")
            inbox.add(item)
            await asyncio.sleep(0)  # an idle model starts this frame now, before the next message can supersede it

    async def answer_inbox(websocket: WebSocket, inbox: Inbox, rounds: RoundPool):
        while True:
            head = await inbox.head()
            if head.reply is None and head.reset is not None:
                rounds.reset(head.reset.round)
                head.reply = Pong()
            if head.reply is None:
                async with turns:
                    await _answer_next_frame(inbox, rounds)
            if not await _send(websocket, inbox.pop().reply):
                return

    async def _answer_next_frame(inbox: Inbox, rounds: RoundPool):
        """The first unanswered frame: the head, or the newer frame that superseded it while it waited
        for this turn (the turn passes to it: superseding never sends a connection to the back of the line)."""
        for item in list(inbox.items):
            if item.reply is not None:
                continue
            if item.reset is not None:
                rounds.reset(item.reset.round)
                item.reply = Pong()
                continue
            item.started = True
            item.reply = await _frame_reply(item, rounds)
            return

    def _frame_item(data: bytes, t0: float) -> Inbound:
        try:
            header, image = parse_frame(data, settings.max_frame_bytes)
        except FrameError as e:
            return Inbound(reply=e.error)
        return Inbound(header=header, image=image, t0=t0)

    def _control_item(text: str) -> Inbound:
        try:
            ctl = ClientControl.model_validate_json(text)
        except ValidationError as e:
            return Inbound(reply=ErrorMessage(code="bad_message", message=f"text messages are ClientControl JSON: {_first_error(e)}"))
        return Inbound(reset=ctl) if ctl.type == "reset" else Inbound(reply=Pong())

    def answer_frame(header: FrameHeader, image: bytes, rounds: RoundPool):
        # all in a worker thread: decoding, the model and the posterior would each stall the event loop
        pooled, n = rounds.add(header.round, log_probs_of(image))  # a connection's frames are handled one at a time
        return engine.prediction(pooled, top_k=header.top_k or settings.top_k, top_cells=settings.top_cells,
                                 round=header.round, frame=header.frame, frames=n)

    async def _frame_reply(item: Inbound, rounds: RoundPool):
        header, image, item.image = item.header, item.image, None
        try:
            pred = await run(answer_frame, header, image, rounds)
            pred.latency_ms = round((time.perf_counter() - item.t0) * 1000, 3)
            return pred
        except FrameError as e:
            e.error.frame = header.frame
            return e.error
        except Exception as e:  # noqa: BLE001 - one bad frame must not end the player's session
            return ErrorMessage(code="internal", message=f"{type(e).__name__}: {e}", frame=header.frame)

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request):
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        # the token goes only to a page that proved it has it (/?token=..., the URL `serve` prints): any
        # installed extension may fetch this page, and the page keeps the token in its own origin's storage
        token = settings.token if settings.token_ok(request.query_params.get("token")) else ""
        return HTMLResponse(page.replace("__LF_TOKEN__", html.escape(token, quote=True)),
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    if play is not None:
        mount_play(app, play, authorized, run, read_json)
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
