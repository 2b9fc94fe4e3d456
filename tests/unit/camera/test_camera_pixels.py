"""GenICam payloads -> Frame images: Mono8, RGB8, BGR8 and the four Bayer layouts."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.camera.pixels import PIXEL_FORMATS, mosaic, to_frame_image
from edgead.errors import CameraError


def test_mono_and_rgb_layouts():
    mono = np.arange(12, dtype=np.uint8)
    out = to_frame_image(mono.tobytes(), 3, 4, "Mono8")
    assert out.shape == (3, 4, 1) and out[2, 3, 0] == 11
    rgb = np.arange(36, dtype=np.uint8)
    assert to_frame_image(rgb, 3, 4, "RGB8")[0, 0].tolist() == [0, 1, 2]
    assert to_frame_image(rgb, 3, 4, "BGR8")[0, 0].tolist() == [2, 1, 0]


@pytest.mark.parametrize("fmt", [f for f in PIXEL_FORMATS if f.startswith("Bayer")])
def test_bayer_round_trip_keeps_colours(fmt):
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :16] = (200, 30, 30)
    rgb[:, 16:32] = (30, 200, 30)
    rgb[:, 32:] = (30, 30, 200)
    out = to_frame_image(mosaic(rgb, fmt), 32, 48, fmt)
    inner = out[4:-4]
    for col, expect in ((8, 0), (24, 1), (40, 2)):
        assert int(np.argmax(inner[:, col].mean(axis=0))) == expect, fmt


def test_bad_payloads():
    with pytest.raises(CameraError, match="short"):
        to_frame_image(b"\x00" * 10, 3, 4, "Mono8")
    with pytest.raises(CameraError, match="Mono16"):
        to_frame_image(b"\x00" * 24, 3, 4, "Mono16")
