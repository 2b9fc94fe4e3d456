"""folder:// replay: order, layout, end of stream, loop, triggers, errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgead.camera import EndOfStream, open_camera
from edgead.errors import CameraError, ConfigError


@pytest.fixture()
def folder(tmp_path):
    for i in (1, 2, 10):
        img = np.full((24, 32, 3), i * 20, np.uint8)
        img[..., 2] = 255  # red in BGR on disk
        cv2.imwrite(str(tmp_path / f"part{i}.png"), img)
    cv2.imwrite(str(tmp_path / "mono.bmp"), np.full((24, 32), 7, np.uint8))
    return tmp_path


def test_replays_in_natural_order_then_ends(folder):
    with open_camera(f"folder://{folder}?sort=natural") as cam:
        assert cam.info.width == 32 and cam.info.height == 24 and cam.info.pixel_format == "RGB8"
        frames = [cam.grab() for _ in range(3)]
        with pytest.raises(EndOfStream, match="end of folder after 3 images"):
            cam.grab()
    assert [f.source for f in frames] == ["part1.png", "part2.png", "part10.png"]
    assert [f.frame_id for f in frames] == [0, 1, 2]
    assert frames[0].image.shape == (24, 32, 3) and frames[0].image.dtype == np.uint8
    assert frames[0].image[0, 0].tolist() == [255, 20, 20]  # RGB order
    assert frames[1].t_capture_ns >= frames[0].t_capture_ns
    assert isinstance(EndOfStream("x"), CameraError)


def test_name_sort_loop_and_mono(folder):
    with open_camera(f"folder://{folder}?sort=name&loop=1&pattern=*.png") as cam:
        sources = [cam.grab().source for _ in range(5)]
    assert sources == ["part1.png", "part10.png", "part2.png", "part1.png", "part10.png"]
    with open_camera(f"folder://{folder}?pattern=*.bmp") as cam:
        frame = cam.grab()
        assert frame.image.shape == (24, 32, 1) and cam.info.pixel_format == "Mono8"


def test_software_trigger_and_modes(folder):
    with open_camera(f"folder://{folder}?trigger=software&fps=0.001") as cam:  # fps ignored under trigger
        cam.trigger()
        assert cam.grab(timeout_ms=100).source == "part1.png"
        assert cam.grab(timeout_ms=100).source == "part10.png"  # grab() triggers by itself
    with open_camera(f"folder://{folder}") as cam:
        with pytest.raises(CameraError, match="trigger\\(\\) needs trigger=software"):
            cam.trigger()
    with pytest.raises(ConfigError, match="trigger=hardware is not supported"):
        open_camera(f"folder://{folder}?trigger=hardware")


def test_slow_replay_times_out_and_closed_camera(folder):
    with open_camera(f"folder://{folder}?fps=0.5&timeout_ms=50") as cam:
        cam.grab()
        with pytest.raises(CameraError, match="no frame within 50 ms"):
            cam.grab()
    with pytest.raises(CameraError, match="is closed"):
        cam.grab()


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        open_camera(f"folder://{tmp_path}/nope")
    with pytest.raises(CameraError, match="no file matches"):
        open_camera(f"folder://{tmp_path}")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with open_camera(f"folder://{tmp_path}") as cam, pytest.raises(CameraError, match="cannot decode 'bad.png'"):
        cam.grab()
