"""The camera interface the station uses: ``grab(timeout_ms) -> Frame``, as a context manager.

Every camera is opened from a URL by :func:`edgead.camera.open_camera`; this module holds what all of them share.

Example:
    >>> with open_camera("folder:///data/parts?fps=0") as cam:   # doctest: +SKIP
    ...     frame = cam.grab(timeout_ms=500)
"""
from __future__ import annotations

import abc
import itertools
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

import numpy as np

from edgead.errors import CameraError, ConfigError, FrameError
from edgead.redact import redact


class TriggerMode(str, Enum):
    """When the camera exposes a frame."""

    FREE_RUN = "free_run"  # continuous; grab returns the latest frame
    SOFTWARE = "software"  # one frame per trigger(); grab() triggers itself when none is pending
    HARDWARE = "hardware"  # one frame per edge on the trigger line (e.g. Line1)

    @classmethod
    def parse(cls, text: "str | TriggerMode") -> "TriggerMode":
        """Parse ``free_run`` / ``free-run`` / ``software`` / ``hardware`` (case-insensitive).

        Raises:
            ConfigError: for any other value, listing the accepted ones.
        """
        if isinstance(text, cls):
            return text
        key = str(text).strip().lower().replace("-", "_")
        for mode in cls:
            if mode.value == key:
                return mode
        raise ConfigError(f"camera trigger {text!r} is unknown", hint=f"use one of {[m.value for m in cls]}")


class EndOfStream(CameraError):
    """A finite source (folder replay, video file) has no more frames; the daemon finishes cleanly."""


@dataclass(frozen=True)
class Frame:
    """One captured image.

    Attributes:
        image: uint8 ``[H, W, C]``; C=1 for mono, C=3 for RGB.
        frame_id: monotonic per camera object, starting at 0 (device ids, which may wrap, go in ``meta``).
        t_capture_ns: host wall-clock time of capture in ns since the Unix epoch.
        source: where it came from (the file name for a replay, the URL for a live camera).
        meta: extra per-frame facts (device frame id and timestamp, reconnect count, ...).
    """

    image: np.ndarray
    frame_id: int
    t_capture_ns: int
    source: str
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CameraInfo:
    """What the camera is. ``width``/``height`` are 0 when unknown until the first frame (some video sources)."""

    model: str
    serial: str
    width: int
    height: int
    pixel_format: str


def as_hwc_uint8(image: np.ndarray, where: str, in_place: bool = False) -> np.ndarray:
    """Bring a decoded image to the Frame contract: uint8 ``[H, W, 1]`` or ``[H, W, 3]`` (RGB).

    Args:
        image: a uint8 array ``[H, W]``, ``[H, W, 1]``, ``[H, W, 3]`` (BGR, as OpenCV decodes) or ``[H, W, 4]``
            (BGRA).
        where: the file or URL, for the error message.
        in_place: BGR is turned to RGB in ``image``'s own buffer (no second frame allocated); only for an array
            the caller owns and hands over (a fresh decode).

    Returns:
        The image in the Frame layout, RGB channel order.

    Raises:
        FrameError: for another dtype or layout (the frame exists but cannot be used).
    """
    import cv2

    if image.dtype != np.uint8:
        raise FrameError(f"{where}: image dtype {image.dtype} is not supported", hint="supply 8-bit images")
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim == 3 and image.shape[2] == 1:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image if in_place else None)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise FrameError(f"{where}: image shape {image.shape} is not HxW, HxWx1, HxWx3 or HxWx4")


class Camera(abc.ABC):
    """A frame source. Use as a context manager; the device is released in ``close()`` (idempotent).

    Subclasses implement :meth:`_grab` and :attr:`info`; frame ids and the software-trigger bookkeeping live here.
    """

    scheme: str = "abstract"
    trigger_modes: tuple[TriggerMode, ...] = (TriggerMode.FREE_RUN, TriggerMode.SOFTWARE)

    def __init__(self, url: str, *, trigger: TriggerMode = TriggerMode.FREE_RUN, timeout_ms: int = 2000):
        if trigger not in self.trigger_modes:
            raise ConfigError(
                f"camera {url!r}: trigger={trigger.value} is not supported by {self.scheme}://",
                hint=f"use one of {[m.value for m in self.trigger_modes]}",
            )
        self.url = redact(url)  # for messages and frames; the sources that reopen keep their own copy
        self.trigger_mode = trigger
        self.timeout_ms = int(timeout_ms)
        self._ids = itertools.count()
        self._pending_triggers = 0
        self._closed = False

    @property
    @abc.abstractmethod
    def info(self) -> CameraInfo:
        """Model, serial, size and pixel format."""

    @property
    def reconnects(self) -> int:
        """How many times the camera was reopened after a loss (0 for sources that never reconnect)."""
        return 0

    def grab(self, timeout_ms: int | None = None) -> Frame:
        """Return the next frame (free-run: the latest one).

        In ``SOFTWARE`` mode a trigger is sent first when none is pending, so ``grab()`` alone always works. The
        timeout covers the whole call, the trigger included: no device call may take longer.

        Args:
            timeout_ms: how long to wait; defaults to the camera's ``timeout_ms``.

        Returns:
            The :class:`Frame`.

        Raises:
            CameraError: naming the URL when no frame arrives in time or the camera is lost.
            FrameError: when a frame came but cannot be used (there is a part; the next grab moves on).
            EndOfStream: when a finite source is exhausted.
        """
        if self._closed:
            raise CameraError(f"camera {self.url!r} is closed", hint="open it again with open_camera()")
        timeout = self.timeout_ms if timeout_ms is None else int(timeout_ms)
        deadline = time.monotonic() + timeout / 1000.0
        if self.trigger_mode is TriggerMode.SOFTWARE and self._pending_triggers == 0:
            self._trigger_by(deadline)
            timeout = ms_left(deadline)  # the trigger took its share
        if self.trigger_mode is TriggerMode.SOFTWARE:
            self._pending_triggers -= 1
        image, t_ns, source, meta = self._grab(timeout)
        return Frame(image=image, frame_id=next(self._ids), t_capture_ns=t_ns, source=source, meta=meta)

    def trigger(self) -> None:
        """Send one software trigger (``trigger=software`` only), within the camera's ``timeout_ms``.

        Raises:
            CameraError: in another trigger mode, or when the device refuses the trigger or does not answer.
        """
        self._trigger_by(time.monotonic() + self.timeout_ms / 1000.0)

    def _trigger_by(self, deadline: float) -> None:
        if self.trigger_mode is not TriggerMode.SOFTWARE:
            raise CameraError(
                f"camera {self.url!r}: trigger() needs trigger=software, the camera is in {self.trigger_mode.value}"
            )
        self._send_trigger(deadline)
        self._pending_triggers += 1

    def _send_trigger(self, deadline: float) -> None:
        """Tell the device to expose one frame, returning by ``deadline`` (``time.monotonic()`` seconds); no-op for
        replay sources."""

    @abc.abstractmethod
    def _grab(self, timeout_ms: int) -> tuple[np.ndarray, int, str, dict[str, Any]]:
        """Return ``(image, t_capture_ns, source, meta)`` for the next frame."""

    def close(self) -> None:
        """Release the device (idempotent)."""
        self._closed = True

    def __enter__(self) -> "Camera":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, trigger={self.trigger_mode.value})"


class Backoff:
    """Exponential reconnect delays: ``min_ms``, doubled per failure, capped at ``max_ms``; reset on success."""

    def __init__(self, min_ms: int = 200, max_ms: int = 5000):
        self.min_ms, self.max_ms = int(min_ms), int(max_ms)
        self._next_ms = self.min_ms

    def next_delay_s(self) -> float:
        """The delay before the next attempt, in seconds; doubles the one after."""
        delay = self._next_ms
        self._next_ms = min(self.max_ms, self._next_ms * 2)
        return delay / 1000.0

    def reset(self) -> None:
        """Start again from ``min_ms`` (after a successful reconnect)."""
        self._next_ms = self.min_ms


class BoundedCaller:
    """Runs blocking device calls on one worker thread and waits for each at most until a deadline.

    Some device calls block beyond any timeout we give (a GigE Vision register write retries on its own: 5 x 500 ms
    when the camera is gone). Through this, the caller gets its answer in time; a call that does not return stays
    on the worker, and every later call fails at once until it does (the camera is lost anyway).

    Args:
        name: the worker thread's name.
    """

    def __init__(self, name: str):
        self._name = name
        self._lock = threading.Lock()
        self._job: tuple[Callable[[], Any], threading.Event, list] | None = None
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)  # never blocks interpreter exit
        self._thread.start()

    def _work(self) -> None:
        while True:
            with self._wake:
                while self._job is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                fn, done, box = self._job
            try:
                box.append((True, fn()))
            except BaseException as exc:  # handed to the caller
                box.append((False, exc))
            with self._lock:
                self._job = None
            done.set()

    def call(self, fn: Callable[[], Any], deadline: float) -> Any:
        """``fn()``, or TimeoutError when it has not returned by ``deadline`` (``time.monotonic()`` seconds).

        Raises:
            TimeoutError: the call is still running at the deadline, or an earlier call still is.
            Exception: whatever ``fn`` raised.
        """
        done, box = threading.Event(), []
        with self._wake:
            if self._job is not None:
                raise TimeoutError("an earlier device call has not returned")
            self._job = (fn, done, box)
            self._wake.notify()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError("no answer in time")
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Stop the worker (a call still running is left to finish on its daemon thread)."""
        with self._wake:
            self._closed = True
            self._wake.notify()


def ms_left(deadline: float) -> int:
    """Whole milliseconds from now to ``deadline`` (a ``time.monotonic()`` value), at least 0."""
    return max(0, int((deadline - time.monotonic()) * 1000))


def now_ns() -> int:
    """Host wall-clock time in ns (the clock of ``Frame.t_capture_ns``)."""
    return time.time_ns()
