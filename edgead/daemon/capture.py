"""Capture ahead: when the camera starts the inspections (``trigger: camera``), a thread grabs the frame of part
n+1 while part n is aligned, inferred and answered, so the loop finds it waiting.

A PLC-triggered station cannot do this: its frame exists only after the trigger. The frames wait in a queue of
``runtime.capture_ahead`` frames; when it is full the thread stops grabbing, and the camera's own buffers (or its
free-run "latest frame") hold what comes next. Each frame carries the monotonic time it arrived
(``frame.meta[ARRIVED_NS]``): the station measures the part from there, and records how long it waited as the part's
``queue`` stage. Errors (no frame in time, an unusable frame, the end of a replay) reach the loop in order, as the
camera raised them, and the loop treats them as it does inline.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

from edgead.camera import EndOfStream
from edgead.camera.base import Frame
from edgead.errors import CameraError

log = logging.getLogger(__name__)
ARRIVED_NS = "arrived_monotonic_ns"
"""``Frame.meta`` key: ``time.monotonic_ns()`` when the frame was grabbed ahead."""
_PUT_POLL_S = 0.05


class CaptureAhead:
    """Wraps an open camera with a grabbing thread; :meth:`grab` takes the next frame from its queue.

    Args:
        camera: the open camera (closed by its owner after :meth:`close`).
        depth: frames held ready at most.
        timeout_ms: each grab's timeout on the thread (the loop's trigger poll, so that :meth:`close` is prompt).
    """

    def __init__(self, camera, depth: int, timeout_ms: int):
        self.camera = camera
        self.timeout_ms = int(timeout_ms)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgead-capture", daemon=True)
        self._thread.start()

    def __getattr__(self, name: str):
        return getattr(self.camera, name)  # url, info, ...: the camera's own

    def __enter__(self) -> "CaptureAhead":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            last = False
            try:
                item = (self.camera.grab(self.timeout_ms), time.monotonic_ns())
            except EndOfStream as exc:
                item, last = exc, True
            except Exception as exc:  # noqa: BLE001 -- handed to the loop, which makes it a part's fault or a gap
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=_PUT_POLL_S)
                    break
                except queue.Full:
                    continue
            if last:
                return

    def grab(self, timeout_ms: int) -> Frame:
        """The next frame captured ahead (its arrival time in ``meta[ARRIVED_NS]``).

        Raises:
            CameraError: no frame within ``timeout_ms``, or what the camera raised on the thread (FrameError,
                EndOfStream, ...); any other error the camera raised, as it was.
        """
        try:
            item = self._queue.get(timeout=max(0, timeout_ms) / 1000.0)
        except queue.Empty:
            raise CameraError(f"camera {self.camera.url!r}: no frame within {timeout_ms} ms") from None
        if isinstance(item, BaseException):
            raise item
        frame, arrived_ns = item
        frame.meta[ARRIVED_NS] = arrived_ns
        return frame

    @property
    def ready(self) -> int:
        """Frames (or errors) waiting for the loop."""
        return self._queue.qsize()

    def close(self) -> None:
        """Stop the thread (it finishes the grab in progress) and drop the frames not taken (idempotent)."""
        self._stop.set()
        self._thread.join(self.timeout_ms / 1000.0 + 5.0)
        if self._thread.is_alive():
            log.warning("camera %s: the capture thread did not stop within %.1f s", self.camera.url,
                        self.timeout_ms / 1000.0 + 5.0)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
