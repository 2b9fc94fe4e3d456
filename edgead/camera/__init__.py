"""Cameras as URLs. One table maps each scheme to its class; every scheme has a software twin.

=================  ==========================================================  =====================================
scheme             example                                                     twin
=================  ==========================================================  =====================================
``folder``         ``folder:///data/parts?fps=10&loop=0&pattern=*.png``        a folder of images
``file``           ``file:///videos/line3.mp4?loop=1`` or ``/videos/x.avi``    a video written with cv2.VideoWriter
``opencv``         ``opencv://0`` (V4L2/UVC device index)                      ``file://...?live=1``
``rtsp``/``http``  ``rtsp://10.0.0.5/stream1`` (options via CameraConfig)      ``file://...?live=1``
``aravis``         ``aravis://192.168.10.20?trigger=software&exposure_us=800``  ``aravis://fake``,
                                                                               ``arv-fake-gv-camera-0.8``
=================  ==========================================================  =====================================

Example:
    >>> with open_camera("folder:///data/parts?fps=0") as cam:   # doctest: +SKIP
    ...     frame = cam.grab(timeout_ms=500)
"""
from __future__ import annotations

from typing import Callable

from edgead.camera.aravis_cam import AravisCamera
from edgead.camera.base import Camera, CameraInfo, EndOfStream, Frame, TriggerMode
from edgead.camera.config import CameraConfig, CameraUrl, parse_url
from edgead.camera.folder import FolderCamera
from edgead.camera.opencv_cam import OpenCvCamera
from edgead.errors import ConfigError

# scheme -> factory(parsed url, config) -> Camera
SCHEMES: dict[str, Callable[[CameraUrl, CameraConfig | None], Camera]] = {
    "folder": FolderCamera.from_url,
    "file": OpenCvCamera.from_url,
    "opencv": OpenCvCamera.from_url,
    "rtsp": OpenCvCamera.from_url,
    "rtsps": OpenCvCamera.from_url,
    "http": OpenCvCamera.from_url,
    "https": OpenCvCamera.from_url,
    "aravis": AravisCamera.from_url,
}


def open_camera(url: str, config: CameraConfig | None = None) -> Camera:
    """Open a camera from its URL.

    Args:
        url: see the table in the module docstring. Query parameters override ``config``.
        config: shared options (timeout_ms, trigger, exposure_us, gain_db, pixel_format); None for defaults.

    Returns:
        An open :class:`Camera`; use it as a context manager.

    Raises:
        ConfigError: for an unknown scheme or parameter, or a bad value.
        CameraError: when the device or source cannot be opened.
        MissingExtraError: for ``aravis://`` without PyGObject (extra ``genicam``).
    """
    parsed = parse_url(url)
    factory = SCHEMES.get(parsed.scheme)
    if factory is None:
        raise ConfigError(f"camera url {url!r}: unknown scheme {parsed.scheme or '(none)'!r}",
                          hint=f"use one of {sorted(SCHEMES)}, a folder path or a video file path")
    return factory(parsed, config)


__all__ = ["Camera", "CameraConfig", "CameraInfo", "EndOfStream", "Frame", "SCHEMES", "TriggerMode", "open_camera"]
