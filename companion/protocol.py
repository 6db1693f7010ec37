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

PROTOCOL_VERSION = 1


class FrameHeader(BaseModel):
    v: Literal[1] = 1
    round: str = Field(min_length=1, max_length=128)   # frames of one round are pooled
    frame: int = Field(ge=0)                            # client's counter, echoed in the reply
    heading: float | None = Field(default=None, ge=0, lt=360)
    top_k: int | None = Field(default=None, ge=1, le=50)   # countries/regions in the answer (None: server's default)


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
