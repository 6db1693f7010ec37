"""Image preprocessing shared by dataprep's cache, training's evaluation/export and the companion.

One definition, so that what the model saw in training is what it sees in the game. A frame is
cut into square tiles that together cover its width (a 16:9 game frame gives two overlapping
squares, a 2:1 strip two, a square image one): the training views are square ~90° crops, so a
square tile is the closest match, and the model's answers for the tiles are pooled.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_PIXELS = 4096 * 4096  # a 4K frame is 8.3 Mpx; anything above is refused, not decoded (companion, dataprep)
# A frame becomes about long/short square tiles: a sliver such as 16×1,000,000 would be under
# MAX_PIXELS yet cost tens of thousands of tiles. A 360° equirectangular panorama is 2:1 and an
# ultrawide monitor 32:9, so 8:1 leaves room for every real frame.
MAX_ASPECT = 8.0


class ImageError(ValueError):
    """The bytes are not an image we can use (the message says why)."""


class ImageTooLarge(ImageError):
    """The image has more pixels than allowed (refused before decoding)."""


@dataclass(frozen=True)
class InputSpec:
    size: int = 224                      # model input is size × size
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, min_side: int | None = None) -> Image.Image:
    """Decode JPEG/PNG/WebP bytes to RGB, refusing garbage, truncation and decompression bombs.

    With `min_side`, a JPEG at least twice that size on its shorter side is decoded at a reduced
    scale (libjpeg's DCT scaling, 1/2 to 1/8) whose shorter side stays ≥ min_side: a 1280×720 frame
    decodes 4× faster and its tiles differ from a full decode by ~0.4/255 on average, because they are
    downscaled to min_side anyway. Images already near the model's size (the training data) decode
    exactly as before.
    """
    if not data:
        raise ImageError("empty image")
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        if w * h > max_pixels:
            raise ImageTooLarge(f"image is {w}x{h}, more than {max_pixels} pixels")
        if max(w, h) > MAX_ASPECT * max(1, min(w, h)):
            raise ImageError(f"image is {w}x{h}: its sides differ by more than {MAX_ASPECT:g}:1")
        if img.format not in ("JPEG", "PNG", "WEBP"):
            raise ImageError(f"unsupported image format {img.format!r} (JPEG, PNG or WebP)")
        if min_side and img.format == "JPEG" and min(w, h) >= 2 * min_side:
            k = min_side / min(w, h)
            img.draft("RGB", (math.ceil(w * k), math.ceil(h * k)))
        img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a JPEG, PNG or WebP image") from None
    except Image.DecompressionBombError:  # Pillow's own limit (~179 Mpx) is still the pixel limit to the client
        raise ImageTooLarge(f"image has more than {max_pixels} pixels") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot decode image: {e}") from e
    if w < 16 or h < 16:
        raise ImageError(f"image is {w}x{h}, too small")
    return img.convert("RGB")


def tile_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Square boxes (left, top, right, bottom) evenly spread over the longer side, covering it."""
    side = min(width, height)
    n = max(1, round(max(width, height) / side))
    if n == 1:
        # nearly square: one centred square
        left, top = (width - side) // 2, (height - side) // 2
        return [(left, top, left + side, top + side)]
    span = max(width, height) - side
    offsets = [round(i * span / (n - 1)) for i in range(n)]
    if width >= height:
        return [(o, 0, o + side, side) for o in offsets]
    return [(0, o, side, o + side) for o in offsets]


def tiles_uint8(img: Image.Image, size: int) -> np.ndarray:
    """The image's square tiles resized to size × size: uint8 [T, size, size, 3]."""
    img = img.convert("RGB")
    out = [np.asarray(img.resize((size, size), Image.BILINEAR, box=box)) for box in tile_boxes(*img.size)]
    return np.stack(out)


def normalize(tiles: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 [T, H, W, 3] → float32 [T, 3, H, W], scaled and normalized as the model expects."""
    x = tiles.astype(np.float32) / 255.0
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def prepare(img: Image.Image, spec: InputSpec) -> np.ndarray:
    """Model input for one image: float32 [T, 3, size, size], one row per tile."""
    return normalize(tiles_uint8(img, spec.size), spec)
