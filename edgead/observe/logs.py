"""Logging set-up: JSON lines for journald and log shippers, plain text for a terminal.

Extra fields passed with ``extra=`` become JSON keys (``log.info("part", extra={"part_id": "A1", "verdict":
"reject"})`` gives ``{"ts": ..., "level": "INFO", "logger": ..., "msg": "part", "part_id": "A1", ...}``); in text
mode they are appended as ``key=value``. When stderr is connected to journald (``JOURNAL_STREAM`` names it), each
line starts with ``<N>``, the syslog priority, which journald strips and stores as the entry's PRIORITY.

Every line has URL passwords redacted (:mod:`edgead.redact`). The root logger gets exactly one handler: calling
:func:`setup_logging` again replaces it, and a default stderr handler (``logging.basicConfig``) is removed, so a
line is never written twice.

Example:
    >>> setup_logging("INFO", json=LogFormat.AUTO)            # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import json as _json
import logging
import os
import sys
from datetime import datetime, timezone
from enum import Enum
from typing import IO

from edgead.errors import ConfigError
from edgead.redact import redact


class LogFormat(str, Enum):
    """``json`` lines, ``text`` lines, or ``auto``: JSON unless stderr is a terminal."""

    TEXT = "text"
    JSON = "json"
    AUTO = "auto"


# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}
_OURS = "_edgead_handler"


def extra_fields(record: logging.LogRecord) -> dict:
    """The fields given with ``extra=`` on a log call."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _priority(levelno: int) -> int:
    return next((p for level, p in sorted(_PRIORITY.items(), reverse=True) if levelno >= level), 7)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO UTC, ms), ``level``, ``logger``, ``msg``, extras, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, timezone.utc)
        out = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-11-22 08:00:00,123 INFO    edgead.daemon: message key=value``."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = extra_fields(record)
        if extras:
            tail = " ".join(f"{k}={v}" for k, v in extras.items())
            head, sep, rest = line.partition("\n")  # keep a traceback below the fields
            line = f"{head} {tail}{sep}{rest}"
        return line


class _JournalPrefix(logging.Formatter):
    """Wraps a formatter and prefixes ``<priority>`` for journald's stream parser."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_priority(record.levelno)}>{self.inner.format(record)}"


class _Redacting(logging.Formatter):
    """Wraps a formatter and removes URL passwords from every line (see :mod:`edgead.redact`)."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def _is_default_stream_handler(handler: logging.Handler) -> bool:
    """A plain stderr/stdout handler as ``logging.basicConfig`` installs it: it would write every line a second
    time, without the journald priority. (pytest's capture handlers are not StreamHandlers of sys.stderr.)"""
    return type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (sys.stderr, sys.stdout)


def on_journal(stream: IO) -> bool:
    """True when ``stream`` is the journald stream systemd connected (``JOURNAL_STREAM=dev:inode``)."""
    want = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in want.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def resolve_format(fmt: LogFormat | str | bool, stream: IO) -> LogFormat:
    """``AUTO`` (or a bool: True = JSON) made concrete for ``stream``."""
    if isinstance(fmt, bool):
        return LogFormat.JSON if fmt else LogFormat.TEXT
    try:
        fmt = LogFormat(fmt)
    except ValueError:
        raise ConfigError(f"log format {fmt!r} unknown", hint="use one of: text, json, auto") from None
    if fmt is LogFormat.AUTO:
        isatty = getattr(stream, "isatty", lambda: False)
        return LogFormat.TEXT if isatty() else LogFormat.JSON
    return fmt


@contextlib.contextmanager
def logging_scope():
    """Restore the root logger's handlers and level on exit (the CLI called in-process, e.g. by a test, leaves no
    handler behind that writes to a stream closed since)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
                if getattr(handler, _OURS, False):
                    handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def setup_logging(level: int | str = "INFO", json: LogFormat | str | bool = LogFormat.AUTO,
                  stream: IO | None = None) -> logging.Handler:
    """Configure the root logger once (calling again replaces the handler installed before).

    Args:
        level: a level name or number, e.g. ``"INFO"``.
        json: :class:`LogFormat` (or its name, or a bool: True = JSON).
        stream: where lines go (default ``sys.stderr``).

    Returns:
        The handler installed on the root logger.

    Raises:
        ConfigError: if the level or format is unknown.
    """
    stream = sys.stderr if stream is None else stream
    if isinstance(level, str):
        if not isinstance(logging.getLevelName(level.upper()), int):
            raise ConfigError(f"log level {level!r} unknown", hint="use DEBUG, INFO, WARNING or ERROR")
        level = logging.getLevelName(level.upper())
    formatter: logging.Formatter = (
        JsonFormatter() if resolve_format(json, stream) is LogFormat.JSON else TextFormatter()
    )
    formatter = _Redacting(formatter)
    if on_journal(stream):
        formatter = _JournalPrefix(formatter)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False) or _is_default_stream_handler(h)]:
        root.removeHandler(old)
        if getattr(old, _OURS, False):
            old.close()  # a StreamHandler leaves its stream open
    root.addHandler(handler)
    root.setLevel(level)
    return handler
