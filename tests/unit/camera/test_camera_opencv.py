"""OpenCV sources, with a video written by cv2.VideoWriter as the twin of files and (live=1) of streams."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from edgead.camera import EndOfStream, open_camera
from edgead.camera.opencv_cam import OpenCvCamera
from edgead.errors import CameraError


def write_video(path, n=6, size=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    assert writer.isOpened()
    for i in range(n):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[:, :, 2] = 40 * i  # red ramp (BGR on disk)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture()
def video(tmp_path):
    return write_video(tmp_path / "line.avi")


def test_video_file_reads_every_frame_then_ends(video):
    for url in (f"file://{video}", str(video)):
        with open_camera(url) as cam:
            assert isinstance(cam, OpenCvCamera)
            assert (cam.info.width, cam.info.height) == (64, 48)
            frames = [cam.grab() for _ in range(6)]
            with pytest.raises(EndOfStream, match="end of video"):
                cam.grab()
        assert frames[0].image.shape == (48, 64, 3)
        red = [int(f.image[..., 0].mean()) for f in frames]
        assert red == sorted(red) and red[-1] > 150  # RGB order, frames in sequence
        assert [f.frame_id for f in frames] == list(range(6))


def test_video_loop(video):
    with open_camera(f"file://{video}?loop=1") as cam:
        frames = [cam.grab() for _ in range(9)]
    assert frames[6].image[..., 0].mean() < frames[5].image[..., 0].mean()


def test_live_twin_reconnects_after_loss(tmp_path):
    path = write_video(tmp_path / "stream.avi", n=5)
    with open_camera(f"file://{path}?live=1&fps=100&timeout_ms=1000&reconnect_max_ms=400") as cam:
        first = cam.grab()
        assert first.image.shape == (48, 64, 3)
        deadline = time.monotonic() + 10
        while cam.reconnects == 0 and time.monotonic() < deadline:  # end of file = a dropped stream
            cam.grab()
        assert cam.reconnects >= 1
        path.unlink()  # the source is gone: grab raises, naming the URL
        with pytest.raises(CameraError, match="stream.avi.*no frame within 300 ms"):
            for _ in range(50):
                cam.grab(timeout_ms=300)
        before = cam.reconnects
        write_video(path, n=5)  # back: frames flow again
        frame = cam.grab(timeout_ms=3000)
        assert cam.reconnects > before and frame.frame_id > first.frame_id


def test_cannot_open(tmp_path):
    with pytest.raises(CameraError, match="cannot open"):
        open_camera(f"file://{tmp_path}/missing.mp4")
