"""``aravis://ADDRESS?trigger=software&exposure_us=5000&gain_db=0&pixel_format=Mono8&timeout_ms=2000``.

GigE Vision / USB3 Vision cameras through Aravis (extra ``genicam``). ``ADDRESS`` is the camera's IP address (GigE),
a USB3 Vision device id, or ``fake`` for Aravis' in-process fake camera (the software twin; the GigE twin is
``arv-fake-gv-camera-0.8 -i 127.0.0.1`` opened as ``aravis://127.0.0.1``). Discovery is never run.

Trigger modes: ``free_run`` (``grab`` re-queues stale frames and returns the next one), ``software``
(``TriggerSoftware`` per frame) and ``hardware`` (``trigger_source=Line1``, ``trigger_activation=RisingEdge``,
``trigger_delay_us``). When the camera drops, ``grab`` raises :class:`CameraError` at once and keeps raising while
a background thread reopens the camera with exponential backoff; frames flow again after it succeeds and
``reconnects`` counts how often that happened.

Example:
    >>> with open_camera("aravis://192.168.10.20?trigger=software&exposure_us=800") as cam:  # doctest: +SKIP
    ...     cam.trigger()
    ...     frame = cam.grab(timeout_ms=500)
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from edgead.camera.aravis_session import AravisSession, AravisSettings, aravis
from edgead.camera.base import Backoff, BoundedCaller, Camera, CameraInfo, TriggerMode, ms_left
from edgead.camera.config import COMMON_PARAMS, CameraConfig, CameraUrl, resolve_params
from edgead.camera.pixels import PIXEL_FORMATS, to_frame_image
from edgead.errors import CameraError, ConfigError, FrameError

log = logging.getLogger(__name__)


def _pixel_format(text: str) -> str:
    if text not in PIXEL_FORMATS:
        raise ValueError(f"unsupported pixel format; use one of {list(PIXEL_FORMATS)}")
    return text


PARAMS = {**COMMON_PARAMS, "exposure_us": float, "gain_db": float, "pixel_format": _pixel_format,
          "frame_rate": float, "trigger_source": str, "trigger_activation": str, "trigger_delay_us": float,
          "buffers": int}
DEFAULTS = {"timeout_ms": 2000, "trigger": TriggerMode.FREE_RUN, "reconnect_max_ms": 5000, "exposure_us": None,
            "gain_db": None, "pixel_format": None, "frame_rate": None, "trigger_source": "Line1",
            "trigger_activation": "RisingEdge", "trigger_delay_us": None, "buffers": 4}


class AravisCamera(Camera):
    """A GenICam camera through Aravis, with a re-queued buffer pool and automatic reconnection."""

    scheme = "aravis"
    trigger_modes = tuple(TriggerMode)

    def __init__(self, url: str, settings: AravisSettings, *, timeout_ms: int = 2000, reconnect_max_ms: int = 5000):
        super().__init__(url, trigger=settings.trigger, timeout_ms=timeout_ms)
        if settings.buffers < 2:
            raise ConfigError(f"camera {url!r}: buffers={settings.buffers} must be >= 2")
        self.settings = settings
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._stop = threading.Event()
        self._backoff = Backoff(200, reconnect_max_ms)
        self._recovery: threading.Thread | None = None
        self._reconnects = 0
        self._attempts = 0
        self._last_error = ""
        self._session: AravisSession | None = AravisSession(settings, url)
        self._calls = BoundedCaller(f"edgead-aravis-call {self.url}")  # after the open: nothing to stop if it fails
        self._info: CameraInfo = self._session.info
        self._watch_control(self._session)
        self._up.set()

    @classmethod
    def check_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> dict[str, Any]:
        """The parameters of an ``aravis://`` URL, validated, and Aravis importable; the camera is not opened.

        Raises:
            ConfigError: naming the URL and the parameter. MissingExtraError, CameraError: Aravis is missing.
        """
        if not url.target:
            raise ConfigError(f"camera url {url.display!r}: no address", hint="e.g. aravis://192.168.10.20 or aravis://fake")
        p = resolve_params(url, PARAMS, DEFAULTS, config)
        if p["buffers"] < 2:
            raise ConfigError(f"camera url {url.display!r}: buffers={p['buffers']} must be >= 2")
        aravis()
        return p

    @classmethod
    def from_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> "AravisCamera":
        """Build from a parsed ``aravis://`` URL (parameters in the module docstring)."""
        p = cls.check_url(url, config)
        settings = AravisSettings(
            target=url.target, trigger=p["trigger"], exposure_us=p["exposure_us"], gain_db=p["gain_db"],
            pixel_format=p["pixel_format"], frame_rate=p["frame_rate"], trigger_source=p["trigger_source"],
            trigger_activation=p["trigger_activation"], trigger_delay_us=p["trigger_delay_us"], buffers=p["buffers"])
        return cls(url.text, settings, timeout_ms=p["timeout_ms"], reconnect_max_ms=p["reconnect_max_ms"])

    @property
    def info(self) -> CameraInfo:
        return self._info

    @property
    def reconnects(self) -> int:
        return self._reconnects

    @property
    def exposure_us(self) -> float:
        """Exposure time read back from the device, in microseconds.

        Raises:
            CameraError: while the camera is down.
        """
        return float(self._live_session(0).cam.get_exposure_time())

    @property
    def gain_db(self) -> float:
        """Gain read back from the device, in dB.

        Raises:
            CameraError: while the camera is down.
        """
        return float(self._live_session(0).cam.get_gain())

    @property
    def is_up(self) -> bool:
        """False while the camera is lost and being reopened."""
        return self._up.is_set()

    # --- loss and recovery ------------------------------------------------------------------------------------
    def _watch_control(self, session: AravisSession) -> None:
        # GigE: the heartbeat thread reports a lost control channel before any grab times out.
        session.on_control_lost(lambda: self._lost("control channel lost", session))

    def _lost(self, reason: str, session: AravisSession | None, probe: bool = False) -> None:
        """Mark the camera down and start the recovery thread (once)."""
        with self._lock:
            if self._stop.is_set() or (session is not None and session is not self._session):
                return
            self._last_error = reason
            self._up.clear()
            if self._recovery is not None and self._recovery.is_alive():
                return
            self._recovery = threading.Thread(target=self._recover, args=(probe,), name="edgead-aravis-reconnect",
                                              daemon=True)
            self._recovery.start()
        log.warning("camera %s: %s", self.url, reason)

    def _recover(self, probe: bool) -> None:
        old = self._session
        if probe and old is not None and old.probe():
            self._up.set()  # the device answers: it was only a missing hardware trigger
            return
        with self._lock:
            self._session = None
        if old is not None:
            old.close()
        while not self._stop.is_set():
            if self._stop.wait(self._backoff.next_delay_s()):
                return
            self._attempts += 1
            try:
                session = AravisSession(self.settings, self.url)
            except CameraError as exc:
                self._last_error = exc.message
                continue
            with self._lock:
                if self._stop.is_set():
                    session.close()
                    return
                self._session = session
                self._info = session.info
                self._reconnects += 1
                self._backoff.reset()
                self._watch_control(session)
                self._up.set()
            log.info("camera %s: reconnected (%d reconnects)", self.url, self._reconnects)
            return

    def _down_error(self, timeout_ms: int) -> CameraError:
        return CameraError(f"camera {self.url!r}: down ({self._last_error}); no frame within {timeout_ms} ms, "
                           f"reconnecting ({self._attempts} attempts, {self._reconnects} reconnects so far)",
                           hint="check the cable, the power and the network of the camera")

    def _live_session(self, timeout_ms: int) -> AravisSession:
        if not self._up.wait(timeout_ms / 1000.0):
            raise self._down_error(timeout_ms)
        session = self._session
        if session is None:
            raise self._down_error(timeout_ms)
        return session

    # --- frames -----------------------------------------------------------------------------------------------
    def _send_trigger(self, deadline: float) -> None:
        session = self._live_session(ms_left(deadline))  # while reconnecting: wait no longer than the grab may
        session.drain()  # a late frame from an earlier trigger must not answer this one
        budget_ms = ms_left(deadline)
        try:
            self._calls.call(session.software_trigger, deadline)  # a register write: bounded by the grab's time
        except TimeoutError as exc:
            self._lost(f"TriggerSoftware: {exc}", session)
            raise CameraError(f"camera {self.url!r}: software trigger got no answer within {budget_ms} ms ({exc})",
                              hint="check the cable, the power and the network of the camera") from None
        except session.GError as exc:
            self._lost(f"TriggerSoftware failed: {exc.message}", session)
            raise CameraError(f"camera {self.url!r}: software trigger failed: {exc.message}") from exc

    def _grab(self, timeout_ms: int) -> tuple[np.ndarray, int, str, dict[str, Any]]:
        deadline = time.monotonic() + timeout_ms / 1000.0
        session = self._live_session(timeout_ms)
        if self.trigger_mode is TriggerMode.FREE_RUN:
            session.drain()  # keep only the latest: stale frames go back to the pool
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            buf = session.pop(max(left_ms, 0))
            if buf is None:
                waiting_for = "hardware trigger or frame" if self.trigger_mode is TriggerMode.HARDWARE else "frame"
                self._lost(f"no {waiting_for} within {timeout_ms} ms", session,
                           probe=self.trigger_mode is TriggerMode.HARDWARE)
                raise CameraError(f"camera {self.url!r}: no {waiting_for} within {timeout_ms} ms "
                                  f"(trigger={self.trigger_mode.value})", hint="check the camera and its trigger")
            try:
                status = buf.get_status()
                if status == session.Aravis.BufferStatus.SUCCESS:
                    image = to_frame_image(buf.get_image_data(), buf.get_image_height(), buf.get_image_width(),
                                           session.format_name(buf.get_image_pixel_format()))
                    meta = {"device_frame_id": buf.get_frame_id(), "device_timestamp_ns": buf.get_timestamp(),
                            "reconnects": self._reconnects}
                    return image, buf.get_system_timestamp(), self.url, meta
            finally:
                session.requeue(buf)  # copied (or bad): back to the pool either way
            if self.trigger_mode is not TriggerMode.FREE_RUN or time.monotonic() >= deadline:
                raise FrameError(f"camera {self.url!r}: frame incomplete (buffer status {status.value_nick})",
                                  hint="GigE: use jumbo frames (MTU 9000) and a dedicated NIC")

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        self._stop.set()
        self._up.set()
        self._calls.close()
        recovery = self._recovery
        if recovery is not None and recovery is not threading.current_thread():
            recovery.join(timeout=10.0)
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

