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
    with pytest.raises(ConfigError, match="trigger=hardware and trigger_line= go together"):
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


def test_preload_hands_out_the_same_read_only_frames_every_pass(folder):
    with open_camera(f"folder://{folder}?preload=1&loop=1&sort=natural") as cam:
        first = [cam.grab() for _ in range(3)]
        (folder / "part2.png").unlink()  # decoded at open: the replay no longer reads the folder
        again = [cam.grab() for _ in range(3)]
    assert [f.source for f in again] == ["part1.png", "part2.png", "part10.png"]
    assert [f.frame_id for f in again] == [3, 4, 5]
    for a, b in zip(first, again):
        assert a.image is b.image  # one buffer per file, reused: no decode, no allocation per part
        assert not a.image.flags.writeable
    assert first[0].image[0, 0].tolist() == [255, 20, 20]  # RGB, as the per-part decode gives
    with open_camera(f"folder://{folder}?sort=natural&loop=1") as cam:  # the default decodes each grab anew
        a, b = cam.grab().image, cam.grab().image
        assert a.flags.writeable and cam.grab().image is not a and not np.shares_memory(a, b)


def test_per_part_decode_converts_in_the_decoded_buffer(folder, monkeypatch):
    seen = []
    real = cv2.cvtColor

    def spy(src, code, dst=None):
        out = real(src, code, dst=dst)
        seen.append(out is src)
        return out

    monkeypatch.setattr(cv2, "cvtColor", spy)
    with open_camera(f"folder://{folder}?pattern=part1.png") as cam:
        frame = cam.grab()
    assert seen == [True] and frame.image[0, 0].tolist() == [255, 20, 20]


def test_preload_over_its_cap_names_the_cap_and_the_folder(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"big{i}.png"), np.zeros((512, 1024, 3), np.uint8))  # 1.5 MiB decoded each
    with pytest.raises(CameraError, match=r"preload_max_mb=2 MiB for the 3 files of .*"
                       + str(tmp_path.name) + r".*after 2") as err:
        open_camera(f"folder://{tmp_path}?preload=1&preload_max_mb=2")
    assert "drop preload=1" in err.value.hint
    with open_camera(f"folder://{tmp_path}?preload=1&preload_max_mb=5") as cam:
        assert cam.grab().image.shape == (512, 1024, 3)
    with pytest.raises(ConfigError, match="preload_max_mb=0 must be >= 1"):
        open_camera(f"folder://{tmp_path}?preload=1&preload_max_mb=0")


def test_preload_keeps_a_bad_file_as_its_part_fault(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "b.png").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((8, 8), np.uint8))
    with open_camera(f"folder://{tmp_path}?preload=1") as cam:
        assert cam.grab().source == "a.png"
        with pytest.raises(FrameError, match="b.png"):
            cam.grab()
        assert cam.grab().source == "c.png"


def test_hardware_trigger_line_replays_one_frame_per_edge(folder, tmp_path_factory):
    import os

    line = tmp_path_factory.mktemp("line") / "line1"
    os.mkfifo(line)
    with open_camera(f"folder://{folder}?trigger=hardware&trigger_line={line}&sort=natural&pattern=*.png") as cam:
        with pytest.raises(CameraError, match="no hardware trigger or frame within 30 ms"):
            cam.grab(timeout_ms=30)
        fd = os.open(line, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, b"\x01\x01")  # two edges: two frames, then none
            assert [cam.grab(timeout_ms=1000).source for _ in range(2)] == ["part1.png", "part2.png"]
            with pytest.raises(CameraError, match="no hardware trigger"):
                cam.grab(timeout_ms=30)
            os.write(fd, b"\x01")
            assert cam.grab(timeout_ms=1000).source == "part10.png"
        finally:
            os.close(fd)
    plain = tmp_path_factory.mktemp("line") / "plain"
    plain.write_text("")
    with pytest.raises(CameraError, match="is not a named pipe"):
        open_camera(f"folder://{folder}?trigger=hardware&trigger_line={plain}")
    with pytest.raises(ConfigError, match="go together"):
        open_camera(f"folder://{folder}?trigger_line={line}")
