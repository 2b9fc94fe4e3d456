"""One open Aravis device: camera + stream + buffer pool, configured once (the I/O shell of ``aravis://``).

The GenICam feature names are SFNC. Opening never runs discovery: a GigE Vision camera is opened by IP address,
the in-process fake by constructing its device, and a USB3 Vision camera by id with the GigE interface disabled
for the duration of the call, so nothing is ever broadcast on the LAN.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from edgead.camera.base import CameraInfo, TriggerMode
from edgead.errors import CameraError, lazy_import

log = logging.getLogger(__name__)

FAKE_TARGET = "fake"
# Frame-layout name -> Aravis pixel format constant.
_ARAVIS_FORMATS = {"Mono8": "PIXEL_FORMAT_MONO_8", "RGB8": "PIXEL_FORMAT_RGB_8_PACKED",
                   "BGR8": "PIXEL_FORMAT_BGR_8_PACKED", "BayerRG8": "PIXEL_FORMAT_BAYER_RG_8",
                   "BayerGR8": "PIXEL_FORMAT_BAYER_GR_8", "BayerGB8": "PIXEL_FORMAT_BAYER_GB_8",
                   "BayerBG8": "PIXEL_FORMAT_BAYER_BG_8"}
_interface_lock = threading.Lock()


def aravis() -> tuple[ModuleType, type]:
    """Import Aravis 0.8 through PyGObject, lazily.

    Returns:
        ``(Aravis, GLib.GError)``.

    Raises:
        MissingExtraError: when PyGObject is missing (extra ``genicam``).
        CameraError: when the Aravis 0.8 typelib is missing.
    """
    gi = lazy_import("gi", feature="aravis:// cameras")
    try:
        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis, GLib  # noqa: PLC0415
    except (ValueError, ImportError) as exc:
        raise CameraError(f"the Aravis 0.8 typelib is not installed ({exc})",
                          hint="apt-get install gir1.2-aravis-0.8 (Debian/Ubuntu)") from exc
    return Aravis, GLib.GError


@dataclass(frozen=True)
class AravisSettings:
    """What to configure on every (re)open. ``None`` leaves the device's setting."""

    target: str
    trigger: TriggerMode
    exposure_us: float | None
    gain_db: float | None
    pixel_format: str | None
    frame_rate: float | None
    trigger_source: str
    trigger_activation: str
    trigger_delay_us: float | None
    buffers: int


def _new_camera(Aravis: ModuleType, target: str) -> Any:
    if target == FAKE_TARGET:
        return Aravis.Camera.new_with_device(Aravis.FakeDevice.new("FAKE01"))
    try:
        ipaddress.ip_address(target)
    except ValueError:
        # A device id (USB3 Vision): keep GigE discovery off so opening it sends nothing on the network.
        with _interface_lock:
            Aravis.disable_interface("GigEVision")
            try:
                return Aravis.Camera.new(target)
            finally:
                Aravis.enable_interface("GigEVision")
    return Aravis.Camera.new(target)


class AravisSession:
    """An open, configured, acquiring camera. Not thread-safe: the owner serialises calls."""

    def __init__(self, settings: AravisSettings, url: str):
        self.Aravis, self.GError = aravis()
        self.url = url
        self.settings = settings
        self.cam: Any = None
        self.stream: Any = None
        self._handler: int | None = None
        try:
            self.cam = _new_camera(self.Aravis, settings.target)
            self._configure()
            self.pixel_format = self.cam.get_pixel_format_as_string()
            self._codes = {int(getattr(self.Aravis, const)): name for name, const in _ARAVIS_FORMATS.items()
                           if hasattr(self.Aravis, const)}
            region = self.cam.get_region()
            self.width, self.height = int(region.width), int(region.height)
            self.info = CameraInfo(self.cam.get_model_name() or "", self.cam.get_device_serial_number() or "",
                                   self.width, self.height, self.pixel_format)
            self.stream = self.cam.create_stream(None, None)
            payload = self.cam.get_payload()
            for _ in range(settings.buffers):  # the pool: allocated once, re-queued after every copy
                self.stream.push_buffer(self.Aravis.Buffer.new_allocate(payload))
            self.cam.start_acquisition()
        except self.GError as exc:
            self.close()
            raise CameraError(f"camera {url!r}: cannot open {settings.target!r}: {exc.message}",
                              hint="check the address, the cable and that no other program holds the camera") from exc

    def _set(self, feature: str, value: Any) -> None:
        try:
            if isinstance(value, str):
                self.cam.set_string(feature, value)
            else:
                self.cam.set_float(feature, float(value))
        except self.GError as exc:
            raise CameraError(f"camera {self.url!r}: cannot set {feature}={value!r}: {exc.message}") from exc

    def _configure(self) -> None:
        s, cam = self.settings, self.cam
        if s.pixel_format:
            cam.set_pixel_format_from_string(s.pixel_format)
        if s.frame_rate:
            cam.set_frame_rate(s.frame_rate)  # before the trigger: Aravis turns FrameStart triggering off here
        if s.exposure_us is not None:
            if cam.is_feature_available("ExposureAuto"):
                self._set("ExposureAuto", "Off")
            cam.set_exposure_time(s.exposure_us)
        if s.gain_db is not None:
            if cam.is_feature_available("GainAuto"):
                self._set("GainAuto", "Off")
            cam.set_gain(s.gain_db)
        if cam.is_feature_available("AcquisitionMode"):
            self._set("AcquisitionMode", "Continuous")
        if s.trigger is TriggerMode.FREE_RUN:
            if cam.is_feature_available("TriggerMode"):
                self._set("TriggerSelector", "FrameStart")
                self._set("TriggerMode", "Off")
            return
        self._set("TriggerSelector", "FrameStart")
        self._set("TriggerMode", "On")
        if s.trigger is TriggerMode.SOFTWARE:
            self._set("TriggerSource", "Software")
            return
        self._set("TriggerSource", s.trigger_source)
        if cam.is_feature_available("TriggerActivation"):
            self._set("TriggerActivation", s.trigger_activation)
        if s.trigger_delay_us is not None:
            self._set("TriggerDelay", s.trigger_delay_us)

    def format_name(self, code: int) -> str:
        """The pixel format name of a buffer's format code.

        Raises:
            CameraError: for a format the Frame conversion does not support.
        """
        name = self._codes.get(int(code))
        if name is None:
            raise CameraError(f"camera {self.url!r}: pixel format 0x{int(code):08x} ({self.pixel_format}) is not "
                              "supported", hint=f"set pixel_format= to one of {list(_ARAVIS_FORMATS)}")
        return name

    def on_control_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from Aravis' heartbeat thread) when the device reports a lost control channel."""
        self._handler = self.cam.get_device().connect("control-lost", lambda *_: callback())

    def software_trigger(self) -> None:
        """Execute ``TriggerSoftware`` (raises GLib.GError when the device does not answer)."""
        self.cam.execute_command("TriggerSoftware")

    def pop(self, timeout_ms: int) -> Any:
        """The next filled buffer, or None after ``timeout_ms`` (the caller must :meth:`requeue` it)."""
        return self.stream.timeout_pop_buffer(max(0, int(timeout_ms)) * 1000)  # Aravis takes microseconds

    def try_pop(self) -> Any:
        """A filled buffer if one is queued, else None (no wait)."""
        return self.stream.try_pop_buffer()

    def requeue(self, buffer: Any) -> None:
        """Give a buffer back to the pool."""
        self.stream.push_buffer(buffer)

    def drain(self) -> int:
        """Re-queue every buffer already filled (stale frames); returns how many."""
        n = 0
        while (buf := self.stream.try_pop_buffer()) is not None:
            self.stream.push_buffer(buf)
            n += 1
        return n

    def probe(self) -> bool:
        """True when the device still answers a register read."""
        try:
            self.cam.get_integer("Width")
            return True
        except self.GError:
            return False

    def close(self) -> None:
        """Stop acquisition and drop the stream and the device (a dead device may take a few seconds)."""
        if self.cam is not None and self._handler is not None:
            self.cam.get_device().disconnect(self._handler)  # breaks the closure -> session -> device cycle
            self._handler = None
        if self.cam is not None and self.stream is not None:
            try:
                self.cam.stop_acquisition()
            except self.GError as exc:
                log.debug("camera %s: stop_acquisition failed on close: %s", self.url, exc.message)
        self.stream = None  # one stream per device: drop it before the camera
        self.cam = None
