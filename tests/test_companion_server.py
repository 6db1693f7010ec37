"""The companion over a real socket: websocket and POST agree with `companion predict`, rounds pool,
bad input is answered and survived, and foreign pages, wrong tokens and wrong Hosts are refused."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest
from companion_fixtures import FIXTURE_IMAGES, frame_bytes, jpeg_bytes, start_server
from paths import ROOT
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect


def cli_predict(bundle, paths, top_k=5) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "companion", "predict", "--model", str(bundle), "--json", "--top-k", str(top_k), *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def assert_same_answer(a: dict, b: dict) -> None:
    assert [c["code"] for c in a["countries"]] == [c["code"] for c in b["countries"]]
    np.testing.assert_allclose([c["p"] for c in a["countries"]], [c["p"] for c in b["countries"]], atol=1e-5)
    assert [r["code"] for r in a["regions"]] == [r["code"] for r in b["regions"]]
    assert [c["id"] for c in a["cells"][:5]] == [c["id"] for c in b["cells"][:5]]
    assert a["point"] == pytest.approx(b["point"], abs=1e-4)
    assert a["model"] == b["model"]


def test_ws_post_and_cli_agree(main_server):
    paths = FIXTURE_IMAGES[:3]
    cli = cli_predict(main_server.bundle, paths)
    assert [r["image"] for r in cli] == [str(p) for p in paths]
    with connect(main_server.ws_url()) as ws:
        for i, (path, expected) in enumerate(zip(paths, cli, strict=True)):
            post = httpx.post(f"{main_server.http}/v1/predict", content=path.read_bytes(),
                              headers={"Authorization": f"Bearer {main_server.token}"}, timeout=60)
            assert post.status_code == 200, post.text
            ws.send(frame_bytes(path.read_bytes(), round_id=f"agree-{i}", frame=i))
            got = json.loads(ws.recv(timeout=60))
            assert got["type"] == "prediction" and got["round"] == f"agree-{i}" and got["frame"] == i and got["frames"] == 1
            assert got["latency_ms"] > 0
            assert_same_answer(got, expected)
            assert_same_answer(post.json(), expected)
            p = post.json()
            assert sum(c["p"] for c in p["countries"]) <= 1 + 1e-9
            assert all(x["p"] >= y["p"] for x, y in zip(p["countries"], p["countries"][1:], strict=False))
            assert -90 <= p["point"]["lat"] <= 90 and -180 <= p["point"]["lng"] <= 180


def test_round_pools_frames_and_reset_forgets(main_server):
    country = {f["properties"]["id"]: f["properties"]["country"]
               for f in httpx.get(f"{main_server.http}/v1/model").json()["cells"]["features"]}
    a, others = FIXTURE_IMAGES[3], FIXTURE_IMAGES[4:16]
    singles = {p: json.loads(httpx.post(f"{main_server.http}/v1/predict?top_k=50", content=p.read_bytes(),
                                        headers={"X-LF-Token": main_server.token}, timeout=60).text)
               for p in (a, *others)}

    def shared(p) -> int:
        """Top cells that a and p both list, in countries where they list at least two of them."""
        common = [c["id"] for c in singles[p]["cells"] if c["id"] in {x["id"] for x in singles[a]["cells"]}]
        per = {k: sum(country[i] == k for i in common) for k in {country[i] for i in common}}
        return sum(n for n in per.values() if n >= 2)

    b = max(others, key=shared)   # the pooling identity below needs two cells of one country in all answers
    with connect(main_server.ws_url()) as ws:
        ws.send(frame_bytes(a.read_bytes(), "pool", 0))
        first = json.loads(ws.recv(timeout=60))
        ws.send(frame_bytes(b.read_bytes(), "pool", 1, heading=90.0))
        pooled = json.loads(ws.recv(timeout=60))
        assert (first["frames"], pooled["frames"]) == (1, 2)
        # a pooled answer differs from either frame alone (the dev bundle's random model disagrees by frame)
        assert pooled["cells"] != first["cells"]
        ws.send(json.dumps({"type": "reset", "round": "pool"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong", "v": 1}
        # the header's top_k (the extension's "countries shown") sets the answer's length
        ws.send(frame_bytes(b.read_bytes(), raw_header=json.dumps({"round": "pool", "frame": 2, "top_k": 8}).encode()))
        again = json.loads(ws.recv(timeout=60))
        assert again["frames"] == 1 and len(again["regions"]) == 8
        assert [c["code"] for c in again["countries"]] == [c["code"] for c in singles[b]["countries"][:8]]
    # pooling is the normalized geometric mean of the frames, before calibration: the prior adds the same
    # number to a cell in every answer and the temperature acts on the country marginal, so between two
    # cells of one country the log-probability difference is the mean of the two frames' differences
    pa = {c["id"]: c["p"] for c in singles[a]["cells"]}
    pb = {c["id"]: c["p"] for c in singles[b]["cells"]}
    pp = {c["id"]: c["p"] for c in pooled["cells"]}
    common = [i for i in pp if i in pa and i in pb]
    groups = [[i for i in common if country[i] == c] for c in sorted({country[i] for i in common})]
    groups = [g for g in groups if len(g) >= 2]
    assert groups, "the two frames share no two top cells of one country to compare"
    for g in groups:
        got = np.log([pp[i] for i in g])
        expect = 0.5 * (np.log([pa[i] for i in g]) + np.log([pb[i] for i in g]))
        np.testing.assert_allclose(got - got[0], expect - expect[0], atol=1e-4)


def test_errors_are_answered_and_the_connection_stays_open(main_server):
    img = FIXTURE_IMAGES[0].read_bytes()
    cases = [
        (b"\x00\x01", "bad_message", None),
        (frame_bytes(img, raw_header=b"{not json"), "bad_header", None),
        (frame_bytes(img, raw_header=json.dumps({"round": "", "frame": 1}).encode()), "bad_header", None),
        (frame_bytes(img, raw_header=json.dumps({"round": "x", "frame": -1}).encode()), "bad_header", None),
        (frame_bytes(img, raw_header=json.dumps({"round": "x", "frame": 1, "top_k": 0}).encode()), "bad_header", None),
        (b"\xff\xff\xff\xff" + img, "bad_header", None),
        (frame_bytes(b"garbage, not an image", "r", 7), "bad_image", 7),
        (frame_bytes(img[: len(img) // 2], "r", 8), "bad_image", 8),
        (frame_bytes(b"", "r", 9), "bad_image", 9),
    ]
    with connect(main_server.ws_url()) as ws:
        for data, code, frame in cases:
            ws.send(data)
            reply = json.loads(ws.recv(timeout=30))
            assert reply["type"] == "error" and reply["code"] == code, (data[:40], reply)
            assert reply["frame"] == frame and reply["message"]
        ws.send("this is not JSON")
        assert json.loads(ws.recv(timeout=10))["code"] == "bad_message"
        ws.send(json.dumps({"type": "launch"}))
        assert json.loads(ws.recv(timeout=10))["code"] == "bad_message"
        ws.send(frame_bytes(img, "r", 10))
        assert json.loads(ws.recv(timeout=60))["type"] == "prediction"
    assert main_server.alive()


def test_post_errors(main_server):
    url, tok = f"{main_server.http}/v1/predict", {"X-LF-Token": main_server.token}
    r = httpx.post(url, content=b"\x89PNG\r\n\x1a\n broken", headers=tok)
    assert r.status_code == 400 and r.json()["code"] == "bad_image"
    r = httpx.post(url, content=FIXTURE_IMAGES[0].read_bytes())
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = httpx.post(url, content=FIXTURE_IMAGES[0].read_bytes(), headers={"X-LF-Token": "wrong"})
    assert r.status_code == 401


def test_limits_on_bytes_and_pixels(tiny_bundle, tmp_path):
    server = start_server(tiny_bundle, tmp_path, "--max-frame-bytes", "200000", "--max-pixels", "100000")
    try:
        big_pixels = jpeg_bytes(FIXTURE_IMAGES[0], size=(400, 300))       # 120,000 px, small file
        big_bytes = b"\xff\xd8" + bytes(250_000)
        with connect(server.ws_url()) as ws:
            ws.send(frame_bytes(big_pixels, "r", 1))
            r = json.loads(ws.recv(timeout=30))
            assert r["code"] == "too_large" and "pixels" in r["message"] and r["frame"] == 1
            ws.send(frame_bytes(big_bytes, "r", 2))
            assert json.loads(ws.recv(timeout=30))["code"] == "too_large"
            ws.send(frame_bytes(jpeg_bytes(FIXTURE_IMAGES[0], size=(300, 300)), "r", 3))
            assert json.loads(ws.recv(timeout=60))["type"] == "prediction"
        r = httpx.post(f"{server.http}/v1/predict", content=big_bytes, headers={"X-LF-Token": server.token})
        assert r.status_code == 413 and r.json()["code"] == "too_large"
    finally:
        server.stop()


def test_rate_limit_per_connection(tiny_bundle, tmp_path):
    server = start_server(tiny_bundle, tmp_path, "--rate-limit", "2")  # burst 4, then 2/s
    try:
        with connect(server.ws_url()) as ws, connect(server.ws_url()) as other:
            for _ in range(12):
                ws.send(json.dumps({"type": "ping"}))
            replies = [json.loads(ws.recv(timeout=10)) for _ in range(12)]
            kinds = [r["type"] if r["type"] == "pong" else r["code"] for r in replies]
            assert kinds.count("pong") >= 4 and kinds.count("rate_limited") >= 6, kinds
            other.send(json.dumps({"type": "ping"}))  # the limit is per connection
            assert json.loads(other.recv(timeout=10))["type"] == "pong"
    finally:
        server.stop()


def test_wrong_token_is_refused_on_the_socket(main_server):
    for token in ("", "wrong", main_server.token + "x"):
        with connect(main_server.ws_url(token)) as ws:
            reply = json.loads(ws.recv(timeout=10))
            assert reply["code"] == "unauthorized"
            with pytest.raises(ConnectionClosed) as e:
                ws.recv(timeout=10)
            assert e.value.rcvd.code == 4401


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1", "null", "http://localhost.evil.example"])
def test_foreign_origin_is_refused(main_server, origin):
    with pytest.raises(InvalidStatus) as e:
        connect(main_server.ws_url(), origin=origin)
    assert e.value.response.status_code == 403
    r = httpx.post(f"{main_server.http}/v1/predict", content=FIXTURE_IMAGES[0].read_bytes(),
                   headers={"X-LF-Token": main_server.token, "Origin": origin})
    assert r.status_code == 403


@pytest.mark.parametrize("origin", ["chrome-extension://abcdefghijklmnopabcdefghijklmnop", "moz-extension://0b1c2d3e-aaaa-bbbb", "own"])
def test_allowed_origins(main_server, origin):
    origin = main_server.http if origin == "own" else origin
    with connect(main_server.ws_url(), origin=origin) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "pong"


def test_dns_rebinding_host_is_refused(main_server):
    r = httpx.get(f"{main_server.http}/", headers={"Host": "attacker.example:8765"})
    assert r.status_code == 403 and main_server.token not in r.text
    with pytest.raises(InvalidStatus):
        connect(main_server.ws_url(), additional_headers={"Host": "attacker.example"})


def test_health_model_and_ui(main_server):
    h = httpx.get(f"{main_server.http}/v1/health").json()
    assert h["status"] == "ok" and h["protocol"] == 1
    m = httpx.get(f"{main_server.http}/v1/model").json()
    assert m["model"] == h["model"]
    ids = {f["properties"]["id"] for f in m["cells"]["features"]}
    assert ids and ids <= set(range(len(ids) + 10_000))
    page = httpx.get(f"{main_server.http}/", params={"token": main_server.token})
    assert page.status_code == 200 and main_server.token in page.text
    for asset in ("app.js", "style.css", "world.json"):
        assert httpx.get(f"{main_server.http}/static/{asset}").status_code == 200
    assert "http://" not in page.text.replace(main_server.http, "") and "https://" not in page.text  # no CDN


def test_token_is_created_once_and_kept_private(tiny_bundle, tmp_path):
    server = start_server(tiny_bundle, tmp_path, token=None)
    try:
        path = tmp_path / "config" / "token"
        assert path.read_text().strip() == server.token and len(server.token) >= 16
        assert path.stat().st_mode & 0o077 == 0
    finally:
        server.stop()
    again = start_server(tiny_bundle, tmp_path, token=None)
    try:
        assert again.token == server.token
    finally:
        again.stop()


def test_protocol_doc_is_generated_from_the_models():
    from companion.protocol_doc import render, render_constants

    fix = "python -m companion protocol-doc --out docs/protocol.md --js extension/shared/constants.js"
    assert (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8") == render(), f"docs/protocol.md is stale: {fix}"
    assert (ROOT / "extension" / "shared" / "constants.js").read_text(encoding="utf-8") == render_constants(), \
        f"extension/shared/constants.js is stale: {fix}"


def test_predict_cli_reports_bad_files(main_bundle, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    r = subprocess.run([sys.executable, "-m", "companion", "predict", "--model", str(main_bundle), "--json",
                        str(FIXTURE_IMAGES[0]), str(bad), str(tmp_path / "missing.jpg")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 1 and {"countries", "regions", "point"} <= set(rows[0])
    assert "bad.jpg" in r.stderr and "missing.jpg" in r.stderr
