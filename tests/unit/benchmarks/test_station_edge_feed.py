"""benchmarks/station.py pauses a camera-triggered station by feeding it no edges (never by stopping its process):
its EdgeFeed against a real hardware-triggered folder camera."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgead.camera import open_camera
from edgead.errors import CameraError

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from station import EdgeFeed  # noqa: E402


@pytest.fixture()
def camera(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), np.full((8, 8, 3), i, np.uint8))
    line = tmp_path / "line1"
    os.mkfifo(line)
    with open_camera(f"folder://{tmp_path}?trigger=hardware&trigger_line={line}&loop=1&preload=1") as cam:
        yield cam, line


def test_a_run_gives_n_frames_then_the_camera_idles(camera):
    cam, line = camera
    frames, answers = [], []

    def grab_all():
        while True:
            try:
                frames.append(cam.grab(timeout_ms=300))
            except CameraError:
                return

    feed = EdgeFeed(line, 10)
    try:
        grabber = threading.Thread(target=grab_all)
        grabber.start()

        def poll():  # the station's answers, as the benchmark reads them: one per frame grabbed since
            new = len(frames) - len(answers)
            answers.extend(range(new))
            return new

        got = feed.run(4, 0.002, poll, quiet_s=2.0)
        grabber.join()  # no edge after the run: the camera times out, as a station between its turns
    finally:
        feed.close()
    assert got == 4 and feed.edges == 4
    assert [f.source for f in frames] == ["p0.png", "p1.png", "p2.png", "p0.png"]
    assert feed.sent_at(0) is not None and feed.sent_at(3) >= feed.sent_at(0) and feed.sent_at(4) is None


def test_a_run_without_answers_counts_them_missing(camera):
    _, line = camera
    feed = EdgeFeed(line, 4)
    try:
        assert feed.run(2, 0.0, lambda: 0, quiet_s=0.05) == 0
    finally:
        feed.close()
