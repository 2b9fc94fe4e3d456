"""Camera options: the typed ``CameraConfig`` section, and the parsing of a camera URL's query.

A URL's query parameters win over the ``CameraConfig`` given next to it (the URL is the more specific source);
unknown keys are rejected with a "did you mean".

Example:
    >>> url = parse_url("folder:///data/parts?fps=10&loop=1")
    >>> url.scheme, url.target, url.query["fps"]
    ('folder', '/data/parts', '10')
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from edgead.camera.base import TriggerMode
from edgead.data.images import MAX_IMAGE_PX
from edgead.errors import ConfigError
from edgead.redact import redact

MAX_IMAGE_PX_LIMIT = 1 << 30  # OpenCV's own decode limit (OPENCV_IO_MAX_IMAGE_PIXELS)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")


@dataclass(frozen=True)
class CameraConfig:
    """Options shared by the camera schemes (``None``: leave the device's own setting).

    Attributes:
        timeout_ms: default wait of ``grab()``.
        trigger: free-run, software or hardware trigger.
        exposure_us: exposure time (Aravis).
        gain_db: analogue gain (Aravis).
        pixel_format: GenICam pixel format, e.g. ``Mono8``, ``RGB8``, ``BayerRG8`` (Aravis).
        reconnect_max_ms: cap of the exponential reconnect backoff (live sources).
        max_image_px: largest image (width x height, pixels) a file source (``folder://``) decodes; a file whose
            header declares more is a fault, read from the header before any decoding.
    """

    timeout_ms: int = 2000
    trigger: TriggerMode = TriggerMode.FREE_RUN
    exposure_us: float | None = None
    gain_db: float | None = None
    pixel_format: str | None = None
    reconnect_max_ms: int = 5000
    max_image_px: int = MAX_IMAGE_PX

    def __post_init__(self) -> None:
        from edgead.camera.pixels import PIXEL_FORMATS

        if not 1 <= self.timeout_ms <= 3_600_000:
            raise ConfigError(f"camera.timeout_ms: {self.timeout_ms} is outside 1..3600000")
        if not 1 <= self.reconnect_max_ms <= 600_000:
            raise ConfigError(f"camera.reconnect_max_ms: {self.reconnect_max_ms} is outside 1..600000")
        if self.exposure_us is not None and not 0 < self.exposure_us <= 60e6:
            raise ConfigError(f"camera.exposure_us: {self.exposure_us} is outside (0, 60000000]")
        if self.gain_db is not None and not -100 <= self.gain_db <= 100:
            raise ConfigError(f"camera.gain_db: {self.gain_db} is outside -100..100")
        if self.pixel_format is not None and self.pixel_format not in PIXEL_FORMATS:
            raise ConfigError(f"camera.pixel_format: {self.pixel_format!r} is not supported",
                              hint=f"use one of {list(PIXEL_FORMATS)}")
        if not 1 <= self.max_image_px <= MAX_IMAGE_PX_LIMIT:
            raise ConfigError(f"camera.max_image_px: {self.max_image_px} is outside 1..{MAX_IMAGE_PX_LIMIT}")

    def as_params(self) -> dict[str, Any]:
        """The options that are set, as a dict of parameter name to value."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class CameraUrl:
    """A parsed camera URL: ``scheme://target?query``."""

    text: str
    scheme: str
    target: str
    query: dict[str, str]

    @property
    def display(self) -> str:
        """The URL as it may be printed: passwords replaced by ``***``."""
        return redact(self.text)


def parse_url(url: str) -> CameraUrl:
    """Split a camera URL. A bare path to a video file means ``file://``; a bare directory means ``folder://``.

    Args:
        url: e.g. ``folder:///data?fps=10``, ``aravis://127.0.0.1?trigger=software``, ``/videos/line3.mp4``.

    Returns:
        The :class:`CameraUrl`; ``target`` is the host or path part (host + path for ``rtsp``).

    Raises:
        ConfigError: for an empty URL or a repeated query key.
    """
    text = str(url).strip()
    if not text:
        raise ConfigError("camera url is empty", hint="e.g. folder:///data/parts or aravis://192.168.1.20")
    if "://" not in text:
        path, _, query_text = text.partition("?")
        scheme = "file" if path.lower().endswith(VIDEO_SUFFIXES) else "folder" if _is_dir(path) else ""
        return CameraUrl(text, scheme, path, _parse_query(text, query_text))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("folder", "file"):
        target = unquote(parts.netloc + parts.path)
    elif scheme in ("rtsp", "rtsps", "http", "https", "rtmp"):
        return CameraUrl(text, scheme, text, {})  # stream URLs keep their query; options come from CameraConfig
    else:
        target = unquote(parts.netloc + parts.path)
    return CameraUrl(text, scheme, target, _parse_query(text, parts.query))


def _is_dir(path: str) -> bool:
    try:
        return Path(path).is_dir()
    except OSError:  # a name too long for the filesystem is no folder
        return False


def _parse_query(url: str, query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key in out:
            raise ConfigError(f"camera url {redact(url)!r}: query key {key!r} is given twice")
        out[key] = value
    return out


def to_bool(text: Any) -> bool:
    """``1/true/yes/on`` -> True, ``0/false/no/off`` -> False.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(text, bool):
        return text
    key = str(text).strip().lower()
    if key in ("1", "true", "yes", "on"):
        return True
    if key in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean")


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be >= 1")
    return number


def _trigger(value: Any) -> TriggerMode:
    return value if isinstance(value, TriggerMode) else TriggerMode.parse(value)


# Converters for the keys every scheme shares; schemes add their own.
COMMON_PARAMS: dict[str, Callable[[Any], Any]] = {
    "timeout_ms": _positive_int,
    "trigger": _trigger,
    "reconnect_max_ms": _positive_int,
}


def resolve_params(
    url: CameraUrl,
    spec: Mapping[str, Callable[[Any], Any]],
    defaults: Mapping[str, Any],
    config: CameraConfig | None,
) -> dict[str, Any]:
    """Merge defaults <- config <- URL query, convert each value, and reject unknown query keys.

    Args:
        url: the parsed URL.
        spec: parameter name -> converter (``int``, ``float``, :func:`to_bool`, ...) for this scheme.
        defaults: the scheme's defaults (every key of ``spec`` should have one, ``None`` allowed).
        config: the shared :class:`CameraConfig`, or None; keys the scheme does not know are ignored.

    Returns:
        Parameter name -> converted value.

    Raises:
        ConfigError: naming the URL and the key, for an unknown key (with a "did you mean") or a bad value.
    """
    merged: dict[str, Any] = dict(defaults)
    if config is not None:
        merged.update({k: v for k, v in config.as_params().items() if k in spec})
    for key in url.query:
        if key not in spec:
            close = difflib.get_close_matches(key, list(spec), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {sorted(spec)}"
            raise ConfigError(f"camera url {url.display!r}: unknown parameter {key!r}", hint=hint)
    merged.update(url.query)
    out: dict[str, Any] = {}
    for key, value in merged.items():
        try:
            out[key] = None if value is None else spec[key](value)
        except (TypeError, ValueError, ConfigError) as exc:
            raise ConfigError(f"camera url {url.display!r}: bad value {key}={value!r} ({exc})") from exc
    return out
