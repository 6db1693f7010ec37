"""A frame on the wire → the model's log-probabilities, with the protocol's error for each way it fails."""

from __future__ import annotations

import struct

import numpy as np
from pydantic import ValidationError

from companion import protocol as P
from companion.deps import first_error
from companion.engine import Engine
from runtime.preprocess import ImageError, ImageTooLarge


class FrameError(Exception):
    def __init__(self, code: str, message: str, frame: int | None = None):
        super().__init__(message)
        self.error = P.ErrorMessage(code=code, message=message, frame=frame)


def parse_frame(data: bytes, max_frame_bytes: int) -> tuple[P.FrameHeader, bytes]:
    """`uint32 BE N | N bytes JSON FrameHeader | image bytes` → (header, image bytes)."""
    if len(data) > max_frame_bytes:
        raise FrameError("too_large", f"frame is {len(data)} bytes, the limit is {max_frame_bytes}")
    if len(data) < 4:
        raise FrameError("bad_message", "a binary frame starts with a 4-byte big-endian header length")
    (n,) = struct.unpack(">I", data[:4])
    if n == 0 or n > P.MAX_HEADER_BYTES:
        raise FrameError("bad_header", f"header length {n} is outside 1..{P.MAX_HEADER_BYTES}")
    if 4 + n > len(data):
        raise FrameError("bad_header", f"header length {n} runs past the end of the {len(data)}-byte frame")
    try:
        header = P.FrameHeader.model_validate_json(data[4 : 4 + n])
    except ValidationError as e:
        raise FrameError("bad_header", f"invalid frame header: {first_error(e)}") from None
    return header, data[4 + n :]


def log_probs_of(engine: Engine, image: bytes, max_pixels: int) -> np.ndarray:
    try:
        return engine.frame_log_probs(image, max_pixels)
    except ImageTooLarge as e:
        raise FrameError("too_large", str(e)) from None
    except ImageError as e:
        raise FrameError("bad_image", str(e)) from None
