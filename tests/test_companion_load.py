"""Many clients and rude clients against a real server (the tiny bundle: this tests the server, not
the network): 50 clients × 200 frames lose no reply (a frame overtaken by a newer one of its round
while it waited is answered `superseded`); abrupt disconnects leave it serving."""

from __future__ import annotations

import asyncio
import json
import socket
import struct

import httpx
import pytest
from companion_fixtures import FIXTURE_IMAGES, frame_bytes, jpeg_bytes
from websockets.asyncio.client import connect as aconnect
from websockets.sync.client import connect

CLIENTS, FRAMES, WINDOW = 50, 200, 4


@pytest.mark.slow
def test_50_clients_200_frames_no_lost_reply(tiny_server):
    # small real frames (one tile each) keep 10,000 of them cheap; the 1280×720 path is in the benchmark
    images = [jpeg_bytes(p, size=(32, 32), quality=80) for p in FIXTURE_IMAGES]

    async def client(c: int) -> list[dict]:
        replies: list[dict] = []
        in_flight = asyncio.Semaphore(WINDOW)  # a few frames in flight, like a live capture
        # no keepalive pings: on a loaded CI machine a late pong would close the connection
        async with aconnect(tiny_server.ws_url(), max_queue=None, ping_interval=None) as ws:
            async def reader():
                for _ in range(FRAMES):
                    replies.append(json.loads(await ws.recv()))
                    in_flight.release()

            read = asyncio.create_task(reader())
            for i in range(FRAMES):
                await in_flight.acquire()
                await ws.send(frame_bytes(images[(c + i) % len(images)], round_id=f"client-{c}", frame=i))
            await read
        return replies

    async def main():
        # a hang guard (pytest stops at 600 s), not a speed target: speed is the benchmark's business
        return await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(CLIENTS))), timeout=500)

    results = asyncio.run(main())
    assert len(results) == CLIENTS
    for c, replies in enumerate(results):
        assert {r.get("type") for r in replies} <= {"prediction", "superseded"}, [r for r in replies if r["type"] == "error"][:3]
        assert [r["frame"] for r in replies] == list(range(FRAMES))  # in order, none lost or duplicated
        assert {r["round"] for r in replies} == {f"client-{c}"}
        answered = [r for r in replies if r["type"] == "prediction"]
        assert replies[-1]["type"] == "prediction"  # the newest frame is never superseded
        assert [r["frames"] for r in answered] == list(range(1, len(answered) + 1))  # superseded frames are not pooled
        assert all(r["frame"] < r["by"] < min(r["frame"] + WINDOW, FRAMES) for r in replies if r["type"] == "superseded")
    assert tiny_server.alive()
    assert httpx.get(f"{tiny_server.http}/v1/health").json()["status"] == "ok"


def test_abrupt_disconnects_leave_the_server_serving(tiny_server):
    big = jpeg_bytes(FIXTURE_IMAGES[0], size=(1280, 720))

    async def vanish_mid_frames():
        ws = await aconnect(tiny_server.ws_url())
        for i in range(20):
            await ws.send(frame_bytes(big, "gone", i))
        ws.transport.abort()  # no close frame: the replies have nowhere to go

    async def vanish_after_handshake():
        ws = await aconnect(tiny_server.ws_url())
        ws.transport.abort()

    async def main():
        await asyncio.gather(*(vanish_mid_frames() for _ in range(10)), *(vanish_after_handshake() for _ in range(10)))

    asyncio.run(main())
    for payload in (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n",  # half a handshake
        b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n",          # a TLS hello
        b"",                                                             # connect and leave
    ):
        with socket.create_connection(("127.0.0.1", tiny_server.port), timeout=5) as s:
            s.sendall(payload)
    # half a websocket frame: a binary frame header announcing 1000 bytes, then hang up
    with connect(tiny_server.ws_url()) as ws:
        ws.socket.sendall(bytes([0x82, 0xFE]) + struct.pack(">H", 1000) + b"\x00\x00\x00\x00" + b"x" * 10)
        ws.socket.shutdown(socket.SHUT_RDWR)

    assert tiny_server.alive()
    with connect(tiny_server.ws_url()) as ws:
        ws.send(frame_bytes(big, "after", 0))
        assert json.loads(ws.recv(timeout=30))["type"] == "prediction"
    log = "".join(tiny_server.log)
    assert "Traceback" not in log, log[-3000:]
