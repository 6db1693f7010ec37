"""The shared preprocessing: tiles cover a frame, and reduced-scale JPEG decoding stays faithful."""

import io

import numpy as np
import pytest
from paths import FIXTURES
from PIL import Image

from runtime.preprocess import ImageError, decode_image, tile_boxes, tiles_uint8


def _game_frame(width=1280, height=720) -> bytes:
    src = Image.open(sorted(FIXTURES.glob("*.jpg"))[0]).convert("RGB")
    buf = io.BytesIO()
    src.resize((width, height), Image.BICUBIC).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_tiles_cover_a_wide_frame_with_squares():
    boxes = tile_boxes(1280, 720)
    assert len(boxes) == 2
    assert boxes[0][0] == 0 and boxes[-1][2] == 1280
    assert all(r - left == 720 and b - t == 720 for left, t, r, b in boxes)
    assert tile_boxes(288, 288) == [(0, 0, 288, 288)]


def test_reduced_scale_decode_keeps_enough_pixels_and_matches_full_decode():
    data = _game_frame()
    full, fast = decode_image(data), decode_image(data, min_side=224)
    assert full.size == (1280, 720)
    assert min(fast.size) >= 224 and fast.size[0] < 1280
    a, b = tiles_uint8(full, 224).astype(np.float32), tiles_uint8(fast, 224).astype(np.float32)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 1.5


def test_small_images_decode_exactly_as_without_min_side():
    data = (sorted(FIXTURES.glob("*.jpg"))[0]).read_bytes()
    np.testing.assert_array_equal(np.asarray(decode_image(data)), np.asarray(decode_image(data, min_side=224)))


@pytest.mark.parametrize("size", [(16, 100_000), (4000, 400)])
def test_slivers_are_refused_before_they_become_thousands_of_tiles(size):
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 120, 60)).save(buf, "PNG")   # a few KB, under the pixel limit
    with pytest.raises(ImageError, match="differ by more than"):
        decode_image(buf.getvalue())


def test_wide_but_real_frames_still_decode():
    assert decode_image(_game_frame(3840, 1080)).size == (3840, 1080)     # 32:9 ultrawide
