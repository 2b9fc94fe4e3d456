"""folder:// replay: order, layout, end of stream, loop, triggers, errors."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from edgead.camera import EndOfStream, open_camera
from edgead.errors import CameraError, ConfigError, FrameError


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
    with open_camera(f"folder://{tmp_path}") as cam, pytest.raises(FrameError, match="'bad.png' is corrupt or not an image"):
        cam.grab()


def _forged_png(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header declares ``width`` x ``height`` (decoding it would allocate it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + \
        chunk(b"IEND", b"")


def test_a_bad_file_is_one_frame_error_and_the_replay_moves_on(folder):
    """Vanished, empty, 16-bit, undecodable and oversized files each raise FrameError once, naming the file; the
    next grab delivers the next good file (the old replay retried the same file forever)."""
    cv2.imwrite(str(folder / "part3.png"), np.full((24, 32), 4000, np.uint16))  # 16-bit
    (folder / "part4.png").write_bytes(b"")
    (folder / "part5.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature, no valid header
    (folder / "part6.png").write_bytes(_forged_png(20000, 20000))
    with open_camera(f"folder://{folder}?sort=natural&max_image_px=1000000") as cam:
        (folder / "part2.png").unlink()  # vanishes after the folder was listed
        assert cam.grab().source == "part1.png"
        errors = []
        for _ in range(5):
            with pytest.raises(FrameError) as err:
                cam.grab()
            errors.append(err.value.message)
        assert cam.grab().source == "part10.png"
    for name, why in (("part2.png", "unreadable"), ("part3.png", "uint16"), ("part4.png", "empty"),
                      ("part5.png", "corrupt or not an image"), ("part6.png", "declares 20000x20000")):
        assert any(name in e and why in e for e in errors), (name, errors)


def test_a_looping_replay_lists_the_folder_again_each_pass(folder):
    """Files deleted and restored while looping: the pass after they return replays them."""
    with open_camera(f"folder://{folder}?sort=natural&loop=1") as cam:
        assert [cam.grab().source for _ in range(3)] == ["part1.png", "part2.png", "part10.png"]
        saved = {p.name: p.read_bytes() for p in folder.glob("part*.png")}
        for p in folder.glob("part*.png"):
            p.unlink()
        with pytest.raises(CameraError, match="no file matches") as err:
            cam.grab()
        assert not isinstance(err.value, FrameError)  # no file at all: no frame, no part
        for name, data in saved.items():
            (folder / name).write_bytes(data)
        assert [cam.grab().source for _ in range(3)] == ["part1.png", "part2.png", "part10.png"]
