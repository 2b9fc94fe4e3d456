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
from edgead.errors import ConfigError

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
    """

    timeout_ms: int = 2000
    trigger: TriggerMode = TriggerMode.FREE_RUN
    exposure_us: float | None = None
    gain_db: float | None = None
    pixel_format: str | None = None
    reconnect_max_ms: int = 5000

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
        scheme = "file" if path.lower().endswith(VIDEO_SUFFIXES) else "folder" if Path(path).is_dir() else ""
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


def _parse_query(url: str, query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key in out:
            raise ConfigError(f"camera url {url!r}: query key {key!r} is given twice")
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


def _trigger(value: Any) -> TriggerMode:
    return value if isinstance(value, TriggerMode) else TriggerMode.parse(value)


# Converters for the keys every scheme shares; schemes add their own.
COMMON_PARAMS: dict[str, Callable[[Any], Any]] = {
    "timeout_ms": int,
    "trigger": _trigger,
    "reconnect_max_ms": int,
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
            raise ConfigError(f"camera url {url.text!r}: unknown parameter {key!r}", hint=hint)
    merged.update(url.query)
    out: dict[str, Any] = {}
    for key, value in merged.items():
        try:
            out[key] = None if value is None else spec[key](value)
        except (TypeError, ValueError, ConfigError) as exc:
            raise ConfigError(f"camera url {url.text!r}: bad value {key}={value!r} ({exc})") from exc
    return out
