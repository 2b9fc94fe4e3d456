"""OpenCV sources: ``opencv://0`` (a V4L2/UVC device), ``rtsp://...`` streams and video files.

- A **file** (``file:///x.mp4`` or a bare path ending ``.mp4``/``.avi``/...) is read frame by frame, as fast as asked
  (or paced by ``fps=``); its end raises :class:`EndOfStream`, or restarts with ``loop=1``.
- A **live** source (device, stream, or a file with ``live=1``, the stream's software twin) is read by a thread that
  keeps only the latest frame; when reading fails it reopens the source with exponential backoff and counts the
  reconnects, while ``grab()`` raises :class:`CameraError` naming the URL.

Example:
    >>> with open_camera("rtsp://10.0.0.5/stream1") as cam:   # doctest: +SKIP
    ...     frame = cam.grab(timeout_ms=1000)
"""
from __future__ import annotations

import logging
import math
import threading
import time
from enum import Enum
from typing import Any

import numpy as np

from edgead.camera.base import Backoff, Camera, CameraInfo, EndOfStream, TriggerMode, as_hwc_uint8, now_ns
from edgead.camera.config import COMMON_PARAMS, CameraConfig, CameraUrl, resolve_params, to_bool
from edgead.errors import CameraError, ConfigError
from edgead.redact import redact

log = logging.getLogger(__name__)


class SourceKind(str, Enum):
    """How an OpenCV source behaves."""

    DEVICE = "device"  # opencv://N
    STREAM = "stream"  # rtsp://, http(s)://
    FILE = "file"  # a video file read frame by frame


PARAMS = {**COMMON_PARAMS, "fps": float, "loop": to_bool, "live": to_bool}
DEFAULTS = {"fps": 0.0, "loop": False, "live": False, "timeout_ms": 2000, "trigger": TriggerMode.FREE_RUN,
            "reconnect_max_ms": 5000}


class OpenCvCamera(Camera):
    """A ``cv2.VideoCapture`` source (see the module docstring)."""

    scheme = "opencv"

    def __init__(self, url: str, source: str | int, kind: SourceKind, *, fps: float = 0.0, loop: bool = False,
                 live: bool = False, timeout_ms: int = 2000, trigger: TriggerMode = TriggerMode.FREE_RUN,
                 reconnect_max_ms: int = 5000):
        super().__init__(url, trigger=trigger, timeout_ms=timeout_ms)
        self.source, self.kind = source, kind
        self.fps, self.loop = float(fps), bool(loop)
        self.live = live or kind is not SourceKind.FILE
        self._backoff = Backoff(200, reconnect_max_ms)
        self._cap = self._open()
        if self._cap is None:
            raise CameraError(f"camera {self.url!r}: cv2.VideoCapture cannot open {redact(str(source))!r}",
                              hint="check the device index, the stream URL or the file path")
        self._size = (int(self._cap.get(3)), int(self._cap.get(4)))  # CAP_PROP_FRAME_WIDTH, _HEIGHT
        self._reconnects = 0
        self._lock = threading.Condition()
        self._latest: tuple[np.ndarray, int, int] | None = None  # image, t_ns, sequence
        self._seq = 0
        self._taken_seq = 0
        self._down_reason = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.live:
            if self.kind is SourceKind.FILE and self.fps <= 0:
                self.fps = self._cap.get(5) or 25.0  # CAP_PROP_FPS: play a file as a stream at its own rate
            self._thread = threading.Thread(target=self._reader, name=f"edgead-cam-{url}", daemon=True)
            self._thread.start()

    @classmethod
    def check_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> dict[str, Any]:
        """The parameters of the URL, validated without opening the source.

        Raises:
            ConfigError: naming the URL and the parameter.
        """
        params = resolve_params(url, PARAMS, DEFAULTS, config)
        if url.scheme == "opencv" and not url.target.isdigit():
            raise ConfigError(f"camera url {url.display!r}: opencv:// takes a device index, e.g. opencv://0")
        if not url.target:
            raise ConfigError(f"camera url {url.display!r}: no source", hint="e.g. file:///videos/line3.mp4")
        if not (params["fps"] >= 0 and math.isfinite(params["fps"])):
            raise ConfigError(f"camera url {url.display!r}: fps={params['fps']} must be >= 0")
        return params

    @classmethod
    def from_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> "OpenCvCamera":
        """Build from a parsed ``opencv://``, ``rtsp://``, ``http(s)://`` or ``file://`` URL."""
        params = cls.check_url(url, config)
        if url.scheme == "opencv":
            return cls(url.text, int(url.target), SourceKind.DEVICE, **params)
        if url.scheme == "file":
            return cls(url.text, url.target, SourceKind.FILE, **params)
        return cls(url.text, url.target, SourceKind.STREAM, **params)

    def _open(self) -> Any:
        import cv2

        timeout = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms]
        if self.kind is SourceKind.STREAM:
            cap = cv2.VideoCapture(str(self.source), cv2.CAP_FFMPEG, timeout)
        else:
            cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    @property
    def info(self) -> CameraInfo:
        return CameraInfo(f"opencv {self.kind.value}", redact(str(self.source)), self._size[0], self._size[1], "RGB8")

    @property
    def reconnects(self) -> int:
        return self._reconnects

    # --- file: synchronous -------------------------------------------------------------------------------------
    def _read_file(self) -> tuple[np.ndarray, int, str, dict[str, Any]]:
        ok, image = self._cap.read()
        if not ok and self.loop:
            self._cap.set(1, 0)  # CAP_PROP_POS_FRAMES
            ok, image = self._cap.read()
        if not ok:
            raise EndOfStream(f"camera {self.url!r}: end of video", hint="add loop=1 to the URL to repeat")
        if self.fps > 0:
            time.sleep(1.0 / self.fps)
        return as_hwc_uint8(image, f"camera {self.url!r}"), now_ns(), redact(str(self.source)), {}

    # --- live: reader thread keeps the latest frame, reconnects with backoff -------------------------------------
    def _reader(self) -> None:
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        while not self._stop.is_set():
            cap = self._cap
            ok, image = cap.read() if cap is not None else (False, None)
            if ok:
                with self._lock:
                    self._seq += 1
                    self._latest = (image, now_ns(), self._seq)
                    self._down_reason = ""
                    self._lock.notify_all()
                if period:
                    self._stop.wait(period)
                continue
            self._reconnect()

    def _reconnect(self) -> None:
        with self._lock:
            self._down_reason = "source lost, reconnecting"
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        while not self._stop.is_set():
            delay = self._backoff.next_delay_s()
            log.warning("camera %s lost; reopening in %.1f s", self.url, delay)
            if self._stop.wait(delay):
                return
            cap = self._open()
            if cap is not None:
                self._cap = cap
                self._reconnects += 1
                self._backoff.reset()
                log.info("camera %s reconnected (%d reconnects)", self.url, self._reconnects)
                return

    def _grab(self, timeout_ms: int) -> tuple[np.ndarray, int, str, dict[str, Any]]:
        if not self.live:
            return self._read_file()
        deadline = time.monotonic() + timeout_ms / 1000.0
        with self._lock:
            while self._latest is None or self._latest[2] <= self._taken_seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    why = self._down_reason or "no new frame"
                    raise CameraError(f"camera {self.url!r}: no frame within {timeout_ms} ms ({why}; "
                                      f"{self._reconnects} reconnects so far)")
                self._lock.wait(left)
            image, t_ns, seq = self._latest
            self._taken_seq = seq
        meta = {"sequence": seq, "reconnects": self._reconnects}
        return as_hwc_uint8(image, f"camera {self.url!r}"), t_ns, redact(str(self.source)), meta

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(2.0, self.timeout_ms / 1000.0 + 1.0))
        if self._cap is not None:
            self._cap.release()
            self._cap = None
