"""Health of a freshly switched release: the service reports READY in time (the release's self-test ran before
the switch, ``station_steps.selftest``).

Stdlib only (runs on the station). The waiting logic is pure: the state reader, clock and sleep are injected.

Example:
    >>> wait_ready(manager.state, timeout_s=60)                             # doctest: +SKIP
    >>> last_json(selftest_stdout)["passed"]                                 # doctest: +SKIP
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable


class Phase(str, Enum):
    """Where a service is, the same words for every service manager."""

    STARTING = "starting"  # started, no READY=1 yet
    READY = "ready"  # READY=1 received and still running
    FAILED = "failed"  # the daemon exited (non-zero) or was restarted before READY
    STOPPED = "stopped"  # not running, not asked to run


@dataclass(frozen=True)
class ServiceState:
    """One reading of a service.

    Attributes:
        phase: see :class:`Phase`.
        detail: a line for humans (exit code, ``STATUS=`` text, log file).
        since_epoch_s: when it became READY (``None`` if not ready or unknown).
        restarts: restarts since this start (a crash loop shows here).
        extra: manager-specific fields (pid, status text, log path).
    """

    phase: Phase
    detail: str = ""
    since_epoch_s: float | None = None
    restarts: int = 0
    extra: dict = field(default_factory=dict)


class HealthError(Exception):
    """The release is not healthy (says which check failed and why)."""


def wait_ready(read_state: Callable[[], ServiceState], timeout_s: float, *, poll_s: float = 0.25,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> ServiceState:
    """Poll a service until it is READY.

    Args:
        read_state: returns the current :class:`ServiceState`.
        timeout_s: give up after this long.
        poll_s: pause between readings.
        clock: monotonic clock (injectable).
        sleep: sleep function (injectable).

    Returns:
        The READY state.

    Raises:
        HealthError: when it failed, restarted before READY, stopped, or was not READY within ``timeout_s``.
    """
    deadline = clock() + timeout_s
    while True:
        state = read_state()
        if state.phase is Phase.READY:
            return state
        if state.phase is Phase.FAILED or state.restarts > 0:
            raise HealthError(f"the daemon failed before READY: {state.detail or state.phase.value}")
        if state.phase is Phase.STOPPED:
            raise HealthError(f"the service stopped before READY: {state.detail or 'no detail'}")
        if clock() >= deadline:
            raise HealthError(f"no READY within {timeout_s:g} s (state {state.phase.value}: {state.detail})")
        sleep(poll_s)


def last_json(stdout: str) -> dict | None:
    """The last line of ``stdout`` that is a JSON object (the edgead commands print their result last), or None."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None
