"""The companion's wire protocol. These pydantic models ARE the protocol (docs/protocol.md renders them).

Websocket `/ws?token=TOKEN` (browsers cannot set headers on a websocket, so the pairing token
travels in the query string; the Origin header is checked too).

Client → server, one binary message per frame:
    uint32 big-endian N | N bytes of UTF-8 JSON `FrameHeader` | image bytes (JPEG, PNG or WebP)
Client → server, text: a JSON `ClientControl` (ping, reset a round).
Server → client, text: a JSON `Prediction` for every frame, or an `ErrorMessage` (the connection
stays open after an error), or `Superseded` (a newer frame of its round came before its turn), or a `Pong`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from runtime import preprocess
from runtime.bundle import Country, InputMeta, Region

PROTOCOL_VERSION = 1

# --- every constant and default limit of the wire, defined here only (docs/protocol.md and the
# extension's shared/constants.js are generated from them) ---------------------------------------
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
CLOSE_POLICY = 1008           # a refused websocket handshake (Host or Origin): HTTP 403 to the client
CLOSE_TOO_BIG = 1009          # a websocket message over the size limit
CLOSE_UNAUTHORIZED = 4401     # application close code (4000-4999): the token was missing or wrong
CLOSE_TIMEOUT = 3.0           # seconds a closing websocket waits for the client's side of the close
MAX_HEADER_BYTES = 4096       # a frame's JSON header
MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_JSON_BODY = 16 * 1024     # Play's request bodies are a few hundred bytes
MAX_INBOX = 8                 # messages read from one websocket and not yet answered; then reading waits
MAX_TOP_K = 50                # countries/regions a client may ask for
DEFAULT_TOP_K = 5
TOP_CELLS = 64                # cells in a prediction
RATE_PER_S = 30.0             # messages per second per connection, sustained
RATE_BURST = 60
MAX_ROUNDS = 8                # rounds remembered per connection (LRU)
MAX_CONNECTIONS = 128         # open HTTP/websocket connections (see companion.transport)
HEADER_TIMEOUT = 10.0         # seconds to send a whole request, or to idle between requests
BODY_TIMEOUT = 30.0           # seconds to send a request body
PLAY_GUESSES = 5              # countries a Play guess names, in order
# Confidence levels of the top country's calibrated probability. The served model is calibrated (ECE 0.025,
# game-weighted val and test, MODEL_CARD.md's reliability diagram), so p is how often it is right: answers at
# p >= 0.7 were right 8-10 times in 10 (val/test bins 0.73-1.0: 0.81-1.0), 0.35-0.7 about half the time
# (0.43-0.59), below 0.35 at most 1 in 3 (0.08-0.37); the last holds ~85% of game-weighted answers.
CONFIDENT_P = 0.7
LIKELY_P = 0.35
MAX_PIXELS = preprocess.MAX_PIXELS   # the one pixel limit: what the companion and dataprep decode


class FrameHeader(BaseModel):
    v: Literal[1] = 1
    round: str = Field(min_length=1, max_length=128)   # frames of one round are pooled
    frame: int = Field(ge=0)                            # client's counter, echoed in the reply
    heading: float | None = Field(default=None, ge=0, lt=360)
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)   # countries/regions in the answer (None: server's default)


class ClientControl(BaseModel):
    type: Literal["ping", "reset"]
    round: str | None = None       # reset: forget the frames of this round (None: all)


class CountryP(BaseModel):
    code: str      # ISO 3166-1 alpha-2
    name: str
    p: float


class RegionP(BaseModel):
    code: str      # Natural Earth adm1_code
    name: str
    country: str
    p: float


class CellP(BaseModel):
    id: int        # feature id in GET /v1/model's cells GeoJSON
    p: float


class Point(BaseModel):
    lat: float
    lng: float


# How far to trust the top country, from its calibrated probability (`engine.confidence_of`, the one place
# it is decided): "unsure" means no country clears the bar, and the overlay says "not sure — top guesses".
Confidence = Literal["confident", "likely", "unsure"]


class Prediction(BaseModel):
    type: Literal["prediction"] = "prediction"
    v: int = PROTOCOL_VERSION
    round: str | None = None
    frame: int | None = None
    frames: int = 1                 # frames of this round pooled into this answer
    countries: list[CountryP]
    confidence: Confidence          # of countries[0], from its calibrated p
    regions: list[RegionP]
    point: Point
    cells: list[CellP]
    latency_ms: float               # server time from receiving the frame to sending this answer
    model: str                      # BundleMeta.model_id


ErrorCode = Literal[
    "bad_message", "bad_header", "bad_image", "too_large", "rate_limited", "unauthorized", "internal"
]


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    v: int = PROTOCOL_VERSION
    code: ErrorCode
    message: str
    frame: int | None = None


class Superseded(BaseModel):
    """The answer to a frame that was still waiting for the model when a newer frame of the same round
    arrived on its connection: the newer view wins and this one is skipped (it is not pooled)."""

    type: Literal["superseded"] = "superseded"
    v: int = PROTOCOL_VERSION
    round: str
    frame: int
    by: int                         # the newer frame


class Pong(BaseModel):
    type: Literal["pong"] = "pong"
    v: int = PROTOCOL_VERSION


# --- HTTP replies --------------------------------------------------------------------------------


class Health(BaseModel):
    """`GET /v1/health`."""

    status: Literal["ok"] = "ok"
    protocol: int = PROTOCOL_VERSION
    model: str                      # BundleMeta.model_id


class ModelInfo(BaseModel):
    """`GET /v1/model`: what the served bundle predicts, and how."""

    model: str
    backbone: str
    created: str
    input: InputMeta
    countries: list[Country]
    regions: list[Region]
    metrics: dict
    cells: dict                     # GeoJSON FeatureCollection, properties {"id", "country", "name"}
    prior: str                      # the calibration served
    priors: list[str]               # the calibrations the bundle has
    temperature: float


# --- Play's request bodies -----------------------------------------------------------------------


class NewRound(BaseModel):
    player: str = Field(default="player", min_length=1, max_length=64)


class Guess(BaseModel):
    round: str = Field(min_length=1, max_length=64)
    guesses: list[str] = Field(min_length=1, max_length=PLAY_GUESSES)
