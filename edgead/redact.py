"""Credentials out of printed text: ``rtsp://user:secret@host`` -> ``rtsp://user:***@host``.

Device URLs carry passwords (an RTSP camera's ``user:password@``, or ``?password=`` in a query). Everything edgead
prints -- ``check`` output, log lines, error messages, the systemd ``STATUS=`` line -- goes through :func:`redact`;
the log handlers apply it to every line as a last guard, so a message built from a URL anywhere is covered.

Example:
    >>> redact("camera 'rtsp://admin:hunter2@10.0.0.5/stream1?token=abc&fps=5' lost")
    "camera 'rtsp://admin:***@10.0.0.5/stream1?token=***&fps=5' lost"
"""
from __future__ import annotations

import re

MASK = "***"
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"]*):(?P<secret>[^\s/'\"]*)@")
_SECRET_QUERY = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd|pass|secret|token|api_?key|auth|key)=)"
                           r"(?P<secret>[^&;#\s'\"]*)", re.IGNORECASE)


def redact(text: object) -> str:
    """``text`` with URL passwords and secret query values replaced by ``***`` (user names stay)."""
    out = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", str(text))
    return _SECRET_QUERY.sub(lambda m: f"{m['head']}{MASK}", out)
