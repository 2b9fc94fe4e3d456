"""The verdict of one part, shared by the decision, the PLC protocols and the records."""
from __future__ import annotations

from enum import Enum


class Verdict(str, Enum):
    """What the station tells the PLC about one part. Only ``ACCEPT`` lets a part pass.

    ``NO_READ`` (alignment failed) and ``FAULT`` (error, timeout, overrun) are mapped to the configured
    fail-safe output, which defaults to reject: the station never silently accepts.
    """

    ACCEPT = "accept"
    REJECT = "reject"
    NO_READ = "no-read"
    FAULT = "fault"

    @property
    def passes(self) -> bool:
        """True only for ``ACCEPT``."""
        return self is Verdict.ACCEPT
