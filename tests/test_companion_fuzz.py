"""Hypothesis throws headers, length prefixes, text and image bytes at one open websocket: every
message gets exactly one reply of a known kind, never `internal`, and the connection stays open."""

from __future__ import annotations

import json
import struct

import pytest
from companion_fixtures import FIXTURE_IMAGES, frame_bytes, jpeg_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from websockets.sync.client import connect

from companion.protocol import FrameHeader

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
EXPECTED_ERRORS = {"bad_message", "bad_header", "bad_image", "too_large"}
IMAGE = jpeg_bytes(FIXTURE_IMAGES[0], size=(48, 32), quality=85)


@pytest.fixture(scope="module")
def ws(tiny_server):
    with connect(tiny_server.ws_url(), max_size=None) as conn:
        yield conn
    assert tiny_server.alive()


def exchange(ws, message) -> dict:
    ws.send(message)
    reply = json.loads(ws.recv(timeout=30))
    assert reply["type"] in ("prediction", "error", "pong"), reply
    if reply["type"] == "error":
        assert reply["code"] in EXPECTED_ERRORS, reply
        assert reply["message"]
    return reply


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, 0, "1", None]),
        "round": st.text(max_size=140) | json_values,
        "frame": st.integers(-5, 2**64) | json_values,
        "heading": st.floats(-720, 720, allow_nan=False) | json_values,
    },
) | st.dictionaries(st.text(max_size=10), json_values, max_size=5)


@pytest.mark.slow
@FUZZ
@given(header=headers)
def test_fuzzed_headers(ws, header):
    raw = json.dumps(header).encode()
    reply = exchange(ws, frame_bytes(IMAGE, raw_header=raw))
    try:
        valid = FrameHeader.model_validate_json(raw)
    except ValidationError:
        valid = None
    if valid is None or len(raw) > 4096:
        assert reply["type"] == "error" and reply["code"] == "bad_header", (header, reply)
    else:
        assert reply["type"] == "prediction", (header, reply)
        assert reply["frame"] == valid.frame and reply["round"] == valid.round


@FUZZ
@given(data=st.binary(max_size=600))
def test_fuzzed_binary_messages(ws, data):
    exchange(ws, data)


@FUZZ
@given(n=st.integers(0, 2**32 - 1), tail=st.binary(max_size=300))
def test_fuzzed_length_prefix(ws, n, tail):
    reply = exchange(ws, struct.pack(">I", n) + tail)
    assert reply["type"] == "error"


@FUZZ
@given(text=st.text(max_size=300) | json_values.map(json.dumps))
def test_fuzzed_text_messages(ws, text):
    reply = exchange(ws, text)
    assert reply["type"] in ("pong", "error")


@FUZZ
@given(cut=st.integers(0, len(IMAGE)), flips=st.lists(st.tuples(st.integers(0, len(IMAGE) - 1), st.integers(0, 255)), max_size=12))
def test_fuzzed_image_bytes(ws, cut, flips):
    img = bytearray(IMAGE)
    for pos, value in flips:
        img[pos] = value
    reply = exchange(ws, frame_bytes(bytes(img[:cut]), "fuzz", 1))
    # a damaged JPEG may still decode (the decoder conceals errors); otherwise it is a bad image
    assert reply["type"] == "prediction" or reply["code"] == "bad_image", reply


def test_connection_still_answers_after_fuzzing(ws):
    assert exchange(ws, frame_bytes(IMAGE, "after", 3))["type"] == "prediction"
