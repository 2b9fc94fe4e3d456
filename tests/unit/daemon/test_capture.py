"""Capture ahead (edgead.daemon.capture) on the folder:// twin: frames and errors reach the loop in order."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from edgead.camera import EndOfStream, open_camera
from edgead.daemon.capture import ARRIVED_NS, CaptureAhead
from edgead.errors import CameraError, FrameError


@pytest.fixture
def replay(tmp_path):
    """Four files in name order: three images (values 10, 20, 30) with a corrupt file in the middle."""
    for name, value in (("a.png", 10), ("b.png", 20), ("d.png", 30)):
        cv2.imwrite(str(tmp_path / name), np.full((8, 12), value, np.uint8))
    (tmp_path / "c.png").write_bytes(b"not a png")
    return tmp_path


def test_frames_and_errors_reach_the_loop_in_camera_order(replay):
    with open_camera(f"folder://{replay}?fps=0") as cam, CaptureAhead(cam, depth=1, timeout_ms=200) as ahead:
        got = []
        for _ in range(4):
            try:
                frame = ahead.grab(2000)
                assert frame.meta[ARRIVED_NS] <= time.monotonic_ns()
                got.append((frame.source, int(frame.image[0, 0, 0])))
            except FrameError as exc:
                got.append(("error", "c.png" in str(exc)))
        with pytest.raises(EndOfStream):
            ahead.grab(2000)
    assert got == [("a.png", 10), ("b.png", 20), ("error", True), ("d.png", 30)]


def test_a_full_queue_holds_the_camera_and_close_is_prompt(replay):
    with open_camera(f"folder://{replay}?fps=0&loop=1") as cam:
        ahead = CaptureAhead(cam, depth=2, timeout_ms=200)
        deadline = time.monotonic() + 10
        while ahead.ready < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ahead.ready == 2  # two frames wait; the thread holds the third instead of grabbing on
        t = time.monotonic()
        ahead.close()
        assert not ahead._thread.is_alive()  # noqa: SLF001
        assert time.monotonic() - t < 5.0  # generous: the thread only polls its put
        assert ahead.ready == 0 and ahead.url == cam.url


def test_no_frame_in_time_is_a_camera_error(replay):
    with open_camera(f"folder://{replay}?fps=0.2&loop=1") as cam, CaptureAhead(cam, depth=1, timeout_ms=100) as ahead:
        ahead.grab(5000)  # the first frame comes at once, the next one 5 s later
        with pytest.raises(CameraError):
            ahead.grab(50)
