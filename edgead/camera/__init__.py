"""Cameras as URLs. One table maps each scheme to its class; every scheme has a software twin.

=================  ==========================================================  =====================================
scheme             example                                                     twin
=================  ==========================================================  =====================================
``folder``         ``folder:///data/parts?fps=10&loop=0&pattern=*.png``        a folder of images (``preload=1``:
                                                                               decoded once; ``trigger=hardware&
                                                                               trigger_line=FIFO``: one frame per
                                                                               edge)
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

from edgead.camera.aravis_cam import AravisCamera
from edgead.camera.base import Camera, CameraInfo, EndOfStream, Frame, TriggerMode
from edgead.camera.config import CameraConfig, CameraUrl, parse_url
from edgead.camera.folder import FolderCamera
from edgead.camera.opencv_cam import OpenCvCamera
from edgead.errors import ConfigError

# scheme -> camera class (its ``from_url`` opens, its ``check_url`` validates the URL without opening)
SCHEMES: dict[str, type[Camera]] = {
    "folder": FolderCamera,
    "file": OpenCvCamera,
    "opencv": OpenCvCamera,
    "rtsp": OpenCvCamera,
    "rtsps": OpenCvCamera,
    "http": OpenCvCamera,
    "https": OpenCvCamera,
    "aravis": AravisCamera,
}


def _scheme(url: str) -> tuple[CameraUrl, type[Camera]]:
    parsed = parse_url(url)
    cls = SCHEMES.get(parsed.scheme)
    if cls is None:
        raise ConfigError(f"camera url {parsed.display!r}: unknown scheme {parsed.scheme or '(none)'!r}",
                          hint=f"use one of {sorted(SCHEMES)}, a folder path or a video file path")
    return parsed, cls


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
    parsed, cls = _scheme(url)
    return cls.from_url(parsed, config)


def check_url(url: str, config: CameraConfig | None = None) -> dict:
    """Validate a camera URL and its parameters for its scheme without opening anything (``edgead check``).

    Returns:
        The resolved parameters.

    Raises:
        ConfigError: for an unknown scheme or parameter, or a bad value; MissingExtraError for a missing extra.
    """
    parsed, cls = _scheme(url)
    return cls.check_url(parsed, config)


__all__ = ["Camera", "CameraConfig", "CameraInfo", "EndOfStream", "Frame", "SCHEMES", "TriggerMode", "check_url",
           "open_camera"]
