"""aravis:// against the GigE Vision simulator on 127.0.0.1: free-run, software and hardware trigger, features,
loss and reconnection. Opened by address only: nothing is broadcast."""
from __future__ import annotations

import time

import numpy as np
import pytest

from edgead.camera import TriggerMode, open_camera
from edgead.errors import CameraError

URL = "aravis://127.0.0.1"


def test_free_run_grabs_fresh_frames(gv_simulator):
    with open_camera(f"{URL}?timeout_ms=2000&pixel_format=Mono8") as cam:
        assert (cam.info.model, cam.info.serial) == ("Fake", "GV01")
        assert (cam.info.width, cam.info.height, cam.info.pixel_format) == (512, 512, "Mono8")
        frames = [cam.grab() for _ in range(5)]
    assert all(f.image.shape == (512, 512, 1) and f.image.dtype == np.uint8 for f in frames)
    assert [f.frame_id for f in frames] == [0, 1, 2, 3, 4]
    device_ids = [f.meta["device_frame_id"] for f in frames]
    assert all(b > a for a, b in zip(device_ids, device_ids[1:]))
    assert all(f.t_capture_ns > 0 and f.source == f"{URL}?timeout_ms=2000&pixel_format=Mono8" for f in frames)


def test_software_trigger_n_triggers_n_frames(gv_simulator):
    url = f"{URL}?trigger=software&frame_rate=200&exposure_us=5000&gain_db=2&timeout_ms=2000"
    with open_camera(url) as cam:
        assert cam.trigger_mode is TriggerMode.SOFTWARE
        assert cam.exposure_us == pytest.approx(5000)
        assert cam.gain_db == pytest.approx(2.0)
        frames = []
        for _ in range(6):
            cam.trigger()
            frames.append(cam.grab())
        device_ids = [f.meta["device_frame_id"] for f in frames]
        assert len(frames) == 6 and all(b > a for a, b in zip(device_ids, device_ids[1:]))
        # Under trigger the camera is silent: a raw pop with no trigger gets nothing.
        assert cam._session.pop(300) is None  # noqa: SLF001 (checks the device, not our bookkeeping)


def test_pixel_format_rgb(gv_simulator):
    with open_camera(f"{URL}?pixel_format=RGB8") as cam:
        frame = cam.grab()
    assert frame.image.shape == (512, 512, 3)


def test_hardware_trigger_without_edge_times_out_but_stays_up(gv_simulator):
    # The simulator has Line0 (not Line1); no edge ever comes, so grab times out, and the device still answers.
    with open_camera(f"{URL}?trigger=hardware&trigger_source=Line0&timeout_ms=300") as cam:
        with pytest.raises(CameraError, match="no hardware trigger or frame within 300 ms"):
            cam.grab()
        deadline = time.monotonic() + 5
        while not cam.is_up and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cam.is_up and cam.reconnects == 0


@pytest.mark.parametrize("trigger", ["free_run", "software"])
def test_camera_loss_and_reconnect(gv_simulator, trigger):
    timeout_ms = 1000
    with open_camera(f"{URL}?trigger={trigger}&timeout_ms={timeout_ms}&reconnect_max_ms=500") as cam:
        cam.grab()
        gv_simulator.kill()
        t0 = time.monotonic()
        with pytest.raises(CameraError, match="127.0.0.1"):
            cam.grab()
        # free-run: at the grab timeout; software: the trigger's register write is bounded by the same timeout
        assert time.monotonic() - t0 < 4.0
        with pytest.raises(CameraError, match="down"):
            cam.grab(timeout_ms=200)  # while down: the daemon gets CameraError and emits the fail-safe verdict
        gv_simulator.start()
        deadline = time.monotonic() + 20
        frame = None
        while frame is None and time.monotonic() < deadline:
            try:
                frame = cam.grab()
            except CameraError:
                continue
        assert frame is not None, "camera did not reconnect after the simulator came back"
        assert cam.reconnects == 1 and frame.meta["reconnects"] == 1
        assert [cam.grab().frame_id for _ in range(3)] == [frame.frame_id + 1, frame.frame_id + 2,
                                                           frame.frame_id + 3]


def test_a_software_trigger_to_a_silent_camera_returns_within_the_grab_timeout(gv_simulator):
    """A camera that stops answering (here: the simulator stopped with SIGSTOP, so GVCP gets no reply at all)
    used to hold the trigger's register write for Aravis' own 5 retries x 500 ms, whatever camera.timeout_ms
    said; the write now runs on a worker and the grab gives up at its own timeout, naming it."""
    import os
    import signal

    with open_camera(f"{URL}?trigger=software&timeout_ms=500&reconnect_max_ms=500") as cam:
        cam.grab()
        os.kill(gv_simulator.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(CameraError, match=r"software trigger got no answer within \d+ ms \(no answer in time"):
                cam.grab()  # our bound, not Aravis' GError after its own retries
            with pytest.raises(CameraError):  # down: the next grab fails fast too (no second blocked write)
                cam.grab(timeout_ms=200)
        finally:
            os.kill(gv_simulator.proc.pid, signal.SIGCONT)
