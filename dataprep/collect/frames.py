"""Pixel checks on panorama screenshots: is it drawn yet, has it settled, is it a black frame."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

THUMB = 64  # statistics on a small copy: enough to see content, cheap to compute every read


@dataclass(frozen=True)
class Frame:
    png: bytes
    thumb: np.ndarray  # THUMB x THUMB x 3, float32

    @classmethod
    def from_png(cls, png: bytes) -> Frame:
        with Image.open(io.BytesIO(png)) as im:
            small = im.convert("RGB").resize((THUMB, THUMB), Image.BILINEAR)
        return cls(png, np.asarray(small, dtype=np.float32))

    @property
    def std(self) -> float:
        """Colour variance, as the standard deviation over all pixels and channels (0-255)."""
        return float(self.thumb.std())

    @property
    def mean(self) -> float:
        return float(self.thumb.mean())

    def is_blank(self, blank_std: float) -> bool:
        return self.std < blank_std

    def is_black(self, blank_std: float) -> bool:
        return self.is_blank(blank_std) and self.mean < 16.0

    def differs(self, other: Frame) -> float:
        return float(np.abs(self.thumb - other.thumb).mean())
