"""The companion in-process: its pure parts (frame parsing, the gates, the rate limit, the round
pool) and the app through FastAPI's TestClient on a real tiny ONNX bundle. No server process: the
edit loop's tier (`make test-fast`); test_companion_server covers the same app over real sockets."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from companion_fixtures import FIXTURE_IMAGES, frame_bytes, jpeg_bytes
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from companion import protocol
from companion.engine import Engine, RoundPool
from companion.frames import FrameError, parse_frame
from companion.routes.ws import TokenBucket
from companion.server import create_app
from companion.settings import Settings
from runtime.posterior import pool_log_probs

TOKEN = "unit-token"
LOOPBACK = {"host": "127.0.0.1:8765"}  # the websocket test client sends Host: testserver


def test_parse_frame_splits_header_and_image():
    header, image = parse_frame(frame_bytes(b"JPEG", round_id="r1", frame=3, heading=90.0), 1 << 20)
    assert (header.round, header.frame, header.heading, image) == ("r1", 3, 90.0, b"JPEG")


@pytest.mark.parametrize(("data", "code"), [
    (b"\x00\x00\x00", "bad_message"),                                  # shorter than the length prefix
    (struct.pack(">I", 0) + b"x", "bad_header"),                         # empty header
    (struct.pack(">I", protocol.MAX_HEADER_BYTES + 1) + b"{}", "bad_header"),
    (struct.pack(">I", 50) + b'{"v": 1}', "bad_header"),                 # header runs past the end
    (frame_bytes(b"x", raw_header=b'{"v": 1, "round": "r"}'), "bad_header"),   # no frame number
    (frame_bytes(b"x", raw_header=b"not json"), "bad_header"),
    (b"\x00" * 2000, "too_large"),
])
def test_parse_frame_refuses_malformed_frames_with_a_code(data, code):
    with pytest.raises(FrameError) as e:
        parse_frame(data, 1000)
    assert e.value.error.code == code and e.value.error.message


def test_origin_and_host_gates():
    s = Settings(token=TOKEN, port=8765)
    assert s.origin_ok(None)                                            # not a browser: the token still applies
    assert s.origin_ok("chrome-extension://abcdef") and s.origin_ok("moz-extension://1234-5678")
    assert s.origin_ok("http://127.0.0.1:8765") and s.origin_ok("http://localhost:8765")
    assert not s.origin_ok("http://127.0.0.1:9999")                     # another local server's page
    assert not s.origin_ok("https://evil.example") and not s.origin_ok("http://[evil") and not s.origin_ok("null")
    assert s.host_ok("127.0.0.1:8765") and s.host_ok("localhost") and s.host_ok("[::1]:8765")
    assert not s.host_ok("evil.example:8765") and not s.host_ok(None) and not s.host_ok("127.0.0.1:99999")
    assert Settings(token=TOKEN, host="0.0.0.0").host_ok("192.168.1.5:8765")  # bound beyond loopback: any name
    assert s.token_ok(TOKEN) and not s.token_ok(None) and not s.token_ok(TOKEN + "x")


def test_token_bucket_allows_a_burst_then_refills_at_the_rate():
    # its own clock: a sleep on a busy machine can last long enough for a third token (CI saw it)
    now = [100.0]
    bucket = TokenBucket(rate=50.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.05  # 2.5 tokens at 50/s
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_round_pool_pools_a_rounds_frames_and_forgets_the_oldest_round():
    rng = np.random.default_rng(0)
    frames = [np.log(rng.dirichlet(np.ones(6))) for _ in range(3)]
    pool = RoundPool(max_rounds=2)
    for i, lp in enumerate(frames):
        pooled, n = pool.add("a", lp)
        assert n == i + 1
    np.testing.assert_allclose(pooled, pool_log_probs(np.stack(frames)), atol=1e-12)
    pool.add("b", frames[0])
    pool.add("a", frames[0])   # touching "a" makes "b" the oldest
    pool.add("c", frames[0])
    assert len(pool) == 2 and pool.add("b", frames[0])[1] == 1   # "b" was evicted: it starts over
    pool.reset("b")                                                # leaves "c" (one frame)
    assert len(pool) == 1 and pool.add("c", frames[0])[1] == 2
    pool.reset()
    assert len(pool) == 0


@pytest.fixture(scope="module")
def client(tiny_bundle):
    app = create_app(Engine(tiny_bundle, threads=1), Settings(token=TOKEN, port=8765))
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        yield c


def test_health_and_model_are_typed_replies(client, tiny_bundle):
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["protocol"] == protocol.PROTOCOL_VERSION and health["model"]
    model = client.get("/v1/model").json()
    assert model["model"] == health["model"] and model["prior"] in model["priors"]
    assert len(model["cells"]["features"]) > 0 and {"code", "name"} <= set(model["countries"][0])


def test_predict_needs_the_token_and_answers_a_prediction(client):
    image = jpeg_bytes(FIXTURE_IMAGES[0], (320, 180))
    r = client.post("/v1/predict", content=image)
    assert r.status_code == 401 and r.json()["type"] == "error" and r.json()["code"] == "unauthorized"
    r = client.post("/v1/predict?top_k=3", content=image, headers={"X-LF-Token": TOKEN})
    assert r.status_code == 200, r.text
    pred = protocol.Prediction.model_validate_json(r.content)
    assert len(pred.countries) == 3 and sum(c.p for c in pred.countries) <= 1 + 1e-6
    r = client.post("/v1/predict", content=b"not an image", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400 and r.json()["code"] == "bad_image"


def test_gates_refuse_a_foreign_host_or_origin(client):
    assert client.get("/v1/health", headers={"Host": "rebind.example"}).status_code == 403
    r = client.get("/v1/health", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["code"] == "unauthorized"


def test_websocket_answers_frames_and_controls_and_closes_on_a_wrong_token(client):
    with client.websocket_connect("/ws?token=wrong", headers=LOOPBACK) as ws:
        assert json.loads(ws.receive_text())["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_text()
        assert e.value.code == protocol.CLOSE_UNAUTHORIZED
    with client.websocket_connect(f"/ws?token={TOKEN}", headers=LOOPBACK) as ws:
        ws.send_bytes(frame_bytes(jpeg_bytes(FIXTURE_IMAGES[1], (320, 180)), round_id="r", frame=0))
        pred = json.loads(ws.receive_text())
        assert pred["type"] == "prediction" and (pred["round"], pred["frame"], pred["frames"]) == ("r", 0, 1)
        ws.send_text(json.dumps({"type": "ping", "v": 1}))
        assert json.loads(ws.receive_text())["type"] == "pong"
        ws.send_bytes(b"\x00\x00")
        assert json.loads(ws.receive_text())["code"] == "bad_message"


def test_play_answers_errors_in_the_protocols_envelope(tiny_bundle, tmp_path):
    from paths import FIXTURES

    from companion.play import Play

    engine = Engine(tiny_bundle, threads=1)
    app = create_app(engine, Settings(token=TOKEN, port=8765), Play(engine, FIXTURES, db=tmp_path / "play.sqlite"))
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        for r, status in [(c.post("/v1/play/round", json={"player": "ann"}), 401),
                          (c.post("/v1/play/guess", json={"round": "nope", "guesses": ["FR"]}, headers={"X-LF-Token": TOKEN}), 404),
                          (c.post("/v1/play/guess", content=b"{", headers={"X-LF-Token": TOKEN}), 400)]:
            assert r.status_code == status
            protocol.ErrorMessage.model_validate(r.json())  # type, v, code, message
        rnd = c.post("/v1/play/round", json={"player": "ann"}, headers={"X-LF-Token": TOKEN}).json()
        guess = {"round": rnd["round"], "guesses": ["France"]}
        assert c.post("/v1/play/guess", json=guess, headers={"X-LF-Token": TOKEN}).status_code == 200
        r = c.post("/v1/play/guess", json=guess, headers={"X-LF-Token": TOKEN})
        assert r.status_code == 409 and r.json()["code"] == "bad_message" and r.json()["v"] == protocol.PROTOCOL_VERSION
