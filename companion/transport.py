"""uvicorn's HTTP and websocket protocols with the companion's connection limits.

- HTTP: at most `max_connections` open connections; a connection that has not sent a whole request
  within `header_timeout` seconds (or sits idle between keep-alive requests) is closed, and when the
  cap is reached the oldest such idle connection makes room for the newcomer, so silent sockets can
  neither exhaust the file descriptors nor lock the player out.
- Websocket (uvicorn's sans-io implementation): it writes a pong for every ping without looking at
  its write buffer, so a client that pings and never reads grew the server's memory without bound;
  here reading stops while the client does not read what we write. A message over the size limit is
  refused with close code 1009 and the rest of what the client sends is read and dropped until it
  closes: closing with its data unread would make the kernel send a reset, and the client would see
  1006 instead of 1009. A close the client never completes ends with an abort after `CLOSE_TIMEOUT`
  (a plain close waits for a write buffer that a non-reading client never drains).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from companion.protocol import CLOSE_TIMEOUT


def protocols(max_connections: int, header_timeout: float) -> tuple[type, type]:
    """(HTTP protocol class, websocket protocol class) for uvicorn.Config(http=..., ws=...)."""
    idle: dict[H11Protocol, None] = {}   # connections waiting for a request, oldest first

    class HttpProtocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                oldest = next(iter(idle), None)
                if oldest is None:   # every connection is busy: refuse the newcomer
                    transport.abort()
                    return
                oldest._set_busy()   # now: it is closed only on a later turn of the loop
                oldest.transport.abort()
            self._set_idle()

        def _set_idle(self) -> None:
            self._set_busy()
            idle[self] = None
            self._timer = self.loop.call_later(header_timeout, self._timed_out)

        def _set_busy(self) -> None:
            idle.pop(self, None)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _timed_out(self) -> None:
            self._timer = None
            if self in idle:
                self.transport.abort()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._set_busy()   # a whole request arrived

        def handle_websocket_upgrade(self, event) -> None:
            self._set_busy()   # the websocket protocol takes the connection over
            super().handle_websocket_upgrade(event)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._set_idle()

        def connection_lost(self, exc) -> None:
            self._set_busy()
            super().connection_lost(exc)

    class WebSocketProtocol(WebSocketsSansIOProtocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.close_timeout = CLOSE_TIMEOUT
            self.failed = False

        # backpressure: stop reading while the client does not read (pongs are written without asking)
        def pause_writing(self) -> None:
            super().pause_writing()
            self.transport.pause_reading()

        def resume_writing(self) -> None:
            super().resume_writing()
            if not self.read_paused:
                self.transport.resume_reading()

        async def receive(self):
            message = await self.queue.get()
            if self.read_paused and self.queue.empty():
                self.read_paused = False
                if self.writable.is_set():
                    self.transport.resume_reading()
            return message

        def data_received(self, data: bytes) -> None:
            if self.failed:
                return   # dropping what the client still sends after we refused its message
            super().data_received(data)

        def handle_parser_exception(self) -> None:
            if self.failed:
                return
            self.failed = True
            close = self.conn.close_sent
            self.queue.put_nowait({"type": "websocket.disconnect", "code": close.code, "reason": close.reason})
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.read_paused = False
            self.transport.resume_reading()
            self._abort_later()

        async def send(self, message) -> None:
            await super().send(message)
            if message["type"] == "websocket.close" and self.close_timer is not None:
                self.close_timer.cancel()
                self._abort_later()

        def keepalive_timeout(self) -> None:
            super().keepalive_timeout()
            self._abort_later()

        async def run_asgi(self) -> None:
            await super().run_asgi()
            if self.close_timer is None:
                self._abort_later()   # super() closed the transport; its buffer may never drain

        def _abort_later(self) -> None:
            if self.close_timer is not None:
                self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    return HttpProtocol, WebSocketProtocol
