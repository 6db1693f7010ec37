"""The websocket `/ws`: frames in, one reply per message out, in arrival order.

Under load the newest view wins: each websocket reads ahead into an `Inbox`, a frame still waiting
for the model is answered `Superseded` when a newer frame of its round arrives, and connections take
turns at the model one frame at a time, so a player sees an answer for where they are looking now.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from companion import protocol as P
from companion.deps import Context, first_error
from companion.engine import RoundPool
from companion.frames import FrameError, log_probs_of, parse_frame

router = APIRouter()


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.level, self.t = float(burst), clock()

    def take(self) -> bool:
        now = self.clock()
        self.level = min(self.burst, self.level + (now - self.t) * self.rate)
        self.t = now
        if self.level >= 1:
            self.level -= 1
            return True
        return False


@dataclass
class Inbound:
    """One message read from a websocket, waiting for its reply (replies go out in arrival order)."""

    reply: BaseModel | None = None
    header: P.FrameHeader | None = None   # a frame that needs the model
    image: bytes | None = None
    reset: P.ClientControl | None = None  # a reset, applied in order with the frames
    t0: float = 0.0
    started: bool = False                 # its inference has begun: it can no longer be superseded


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
                    older.reply = P.Superseded(round=older.header.round, frame=older.header.frame, by=item.header.frame)
                    older.image = None
        self.items.append(item)
        self.arrived.set()

    async def room(self, max_bytes: int) -> None:
        while len(self.items) >= P.MAX_INBOX or sum(len(i.image or b"") for i in self.items) >= max_bytes:
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


@router.websocket("/ws")
async def ws(websocket: WebSocket):
    ctx: Context = websocket.app.state.lf
    s = ctx.settings
    if not s.host_ok(websocket.headers.get("host")) or not s.origin_ok(websocket.headers.get("origin")):
        await websocket.close(code=P.CLOSE_POLICY)  # before accept: the handshake is refused with HTTP 403
        return
    await websocket.accept()
    if not s.token_ok(websocket.query_params.get("token")):
        await send(websocket, P.ErrorMessage(code="unauthorized", message="missing or wrong pairing token (?token=...)"))
        await websocket.close(code=P.CLOSE_UNAUTHORIZED, reason="unauthorized")
        return
    session = Session(ctx, websocket)
    tasks = {asyncio.create_task(session.read()), asyncio.create_task(session.answer())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)  # the client left, or stopped taking replies
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with suppress(asyncio.CancelledError):
                await t


class Session:
    """One authorized connection: a reader filling the inbox, an answerer emptying it."""

    def __init__(self, ctx: Context, websocket: WebSocket):
        self.ctx, self.websocket = ctx, websocket
        self.inbox = Inbox()
        self.rounds = RoundPool(ctx.settings.max_rounds)
        self.bucket = TokenBucket(ctx.settings.rate_limit, ctx.settings.rate_burst)

    async def read(self):
        """Read messages as they come (so a newer frame can supersede a waiting one), a few at most."""
        s = self.ctx.settings
        while True:
            await self.inbox.room(2 * s.max_frame_bytes)
            try:
                msg = await self.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if msg["type"] == "websocket.disconnect":
                return
            t0 = time.perf_counter()
            if not self.bucket.take():
                item = Inbound(reply=P.ErrorMessage(code="rate_limited", message=f"more than {s.rate_limit:g} messages/s"))
            elif msg.get("bytes") is not None:
                item = self._frame_item(msg["bytes"], t0)
            else:
                item = self._control_item(msg.get("text") or "")
            self.inbox.add(item)
            await asyncio.sleep(0)  # an idle model starts this frame now, before the next message can supersede it

    async def answer(self):
        while True:
            head = await self.inbox.head()
            if head.reply is None and head.reset is not None:
                self.rounds.reset(head.reset.round)
                head.reply = P.Pong()
            if head.reply is None:
                async with self.ctx.turns:
                    await self._answer_next_frame()
            if not await send(self.websocket, self.inbox.pop().reply):
                return

    async def _answer_next_frame(self):
        """The first unanswered frame: the head, or the newer frame that superseded it while it waited
        for this turn (the turn passes to it: superseding never sends a connection to the back of the line)."""
        for item in list(self.inbox.items):
            if item.reply is not None:
                continue
            if item.reset is not None:
                self.rounds.reset(item.reset.round)
                item.reply = P.Pong()
                continue
            item.started = True
            item.reply = await self._frame_reply(item)
            return

    def _frame_item(self, data: bytes, t0: float) -> Inbound:
        try:
            header, image = parse_frame(data, self.ctx.settings.max_frame_bytes)
        except FrameError as e:
            return Inbound(reply=e.error)
        return Inbound(header=header, image=image, t0=t0)

    @staticmethod
    def _control_item(text: str) -> Inbound:
        try:
            ctl = P.ClientControl.model_validate_json(text)
        except ValidationError as e:
            return Inbound(reply=P.ErrorMessage(code="bad_message", message=f"text messages are ClientControl JSON: {first_error(e)}"))
        return Inbound(reset=ctl) if ctl.type == "reset" else Inbound(reply=P.Pong())

    def _answer_frame(self, header: P.FrameHeader, image: bytes):
        # all in a worker thread: decoding, the model and the posterior would each stall the event loop
        engine, s = self.ctx.engine, self.ctx.settings
        pooled, n = self.rounds.add(header.round, log_probs_of(engine, image, s.max_pixels))  # one frame at a time
        return engine.prediction(pooled, top_k=header.top_k or s.top_k, top_cells=s.top_cells,
                                 round=header.round, frame=header.frame, frames=n)

    async def _frame_reply(self, item: Inbound):
        header, image, item.image = item.header, item.image, None
        try:
            pred = await self.ctx.run(self._answer_frame, header, image)
            pred.latency_ms = round((time.perf_counter() - item.t0) * 1000, 3)
            return pred
        except FrameError as e:
            e.error.frame = header.frame
            return e.error
        except Exception as e:  # noqa: BLE001 - one bad frame must not end the player's session
            return P.ErrorMessage(code="internal", message=f"{type(e).__name__}: {e}", frame=header.frame)


async def send(websocket: WebSocket, reply) -> bool:
    """Send a reply; False when the client has gone (an abrupt disconnect is not an error)."""
    try:
        await websocket.send_text(reply.model_dump_json())
        return True
    except (WebSocketDisconnect, RuntimeError, OSError):
        return False
