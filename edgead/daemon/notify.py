"""The systemd notify protocol (``sd_notify``), written out: no python-systemd dependency.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a filesystem path, or ``@name`` for an abstract socket)
and, with ``WatchdogSec=``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``. A message is one ``AF_UNIX``/``SOCK_DGRAM``
datagram of ``KEY=value`` lines. Outside systemd (a terminal, a test) every call is a no-op, logged once at
debug level: this is the only quiet path in edgead.

The watchdog proves the *loop* is alive, so pings come from the loop itself (:class:`WatchdogPinger`), never from
a helper thread: a hung loop stops pinging and systemd restarts the service.

Example:
    >>> notifier = Notifier()                                   # doctest: +SKIP
    >>> pinger = WatchdogPinger(notifier)
    >>> notifier.ready(status="inspecting")
    >>> while running:
    ...     inspect_one_part()
    ...     pinger.tick()
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Mapping

log = logging.getLogger(__name__)


def _address(value: str) -> str | bytes | None:
    """The socket address for a ``NOTIFY_SOCKET`` value, or None when the kind is not supported."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # e.g. vsock:CID:PORT (systemd >= 254 in VMs): not used on stations


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds, the clock systemd uses for ``MONOTONIC_USEC=``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends notify messages to systemd; a no-op when not started by it.

    Args:
        env: the environment to read (default ``os.environ``).

    Example:
        >>> with Notifier() as n:                                        # doctest: +SKIP
        ...     n.extend_timeout(120_000_000)   # the engine warm-up needs more than TimeoutStartSec
        ...     n.ready()
    """

    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.socket_path = env.get("NOTIFY_SOCKET") or None
        self._address = _address(self.socket_path) if self.socket_path else None
        self._sock: socket.socket | None = None
        self._said_noop = False
        self._failures: set[str] = set()
        self.dropped = 0  # messages not sent (socket full or gone)
        self._watchdog_usec = _watchdog_usec(env)
        if self.socket_path and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a path or @abstract name; systemd notifications are off",
                        self.socket_path)

    @property
    def enabled(self) -> bool:
        """True when messages go somewhere (started by systemd with a usable ``NOTIFY_SOCKET``)."""
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send one datagram of ``KEY=value`` fields.

        Args:
            fields: lines such as ``"READY=1"``.

        Never blocks: a socket whose reader does not keep up (a full receive queue) drops the message
        (counted in :attr:`dropped`) instead of stopping the inspection loop.

        Returns:
            True if sent; False when not under systemd (logged once at debug) or when sending failed or would have
            blocked (logged at warning, once per kind of failure: systemd treats a lost notification like a late
            one).
        """
        if self._address is None:
            if not self._said_noop:
                log.debug("not started by systemd (no NOTIFY_SOCKET): notifications are no-ops")
                self._said_noop = True
            return False
        payload = "\n".join(fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX,
                                           socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            self._sock.sendto(payload, socket.MSG_DONTWAIT, self._address)
        except OSError as exc:
            self.dropped += 1
            kind = type(exc).__name__
            if kind not in self._failures:
                self._failures.add(kind)
                log.warning("sd_notify to %s failed: %s", self.socket_path, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up is complete (``Type=notify`` units count as started from here)."""
        return self.send("READY=1", *([_status(status)] if status is not None else []))

    def status(self, text: str) -> bool:
        """``STATUS=...``: one line shown by ``systemctl status``."""
        return self.send(_status(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: a keep-alive ping. Call through :class:`WatchdogPinger`, which paces it."""
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        """``STOPPING=1``: shutdown has begun (draining)."""
        return self.send("STOPPING=1")

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC=`` (required by ``Type=notify-reload``, systemd >= 253).

        Send :meth:`ready` when the reload is done.
        """
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def extend_timeout(self, usec: int) -> bool:
        """``EXTEND_TIMEOUT_USEC=``: the current start/stop step needs ``usec`` more microseconds from now.

        Args:
            usec: microseconds, > 0.

        Raises:
            ValueError: if ``usec`` is not positive.
        """
        if int(usec) <= 0:
            raise ValueError(f"extend_timeout: usec must be > 0, got {usec}")
        return self.send(f"EXTEND_TIMEOUT_USEC={int(usec)}")

    def watchdog_interval_s(self) -> float | None:
        """The watchdog timeout (``WatchdogSec=``) in seconds, or None when no watchdog is asked for this process.

        ``WATCHDOG_PID``, when set, must be this process: a child that inherited the variables must not ping.
        Ping at half this interval (:class:`WatchdogPinger` does).
        """
        return None if self._watchdog_usec is None else self._watchdog_usec / 1e6

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Notifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _status(text: str) -> str:
    return "STATUS=" + " ".join(str(text).splitlines())


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = env.get("WATCHDOG_PID")
    try:
        usec = int(raw)
        if pid and int(pid) != os.getpid():
            return None
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r / WATCHDOG_PID=%r", raw, pid)
        return None
    return usec if usec > 0 else None


class WatchdogPinger:
    """Paces ``WATCHDOG=1`` from the main loop: :meth:`tick` every iteration, a ping at most every half interval.

    Nothing runs in the background, so when the loop hangs the pings stop and systemd's watchdog fires.

    Args:
        notifier: where the pings go.
        interval_s: the watchdog timeout; default :meth:`Notifier.watchdog_interval_s` (None = no watchdog).
        clock: monotonic clock in seconds (injectable for tests).
    """

    def __init__(self, notifier: Notifier, interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.notifier = notifier
        self.interval_s = notifier.watchdog_interval_s() if interval_s is None else interval_s
        self.period_s = None if self.interval_s is None else self.interval_s / 2
        self._clock = clock
        self._last: float | None = None
        self.pings = 0

    @property
    def enabled(self) -> bool:
        """True when a watchdog is configured."""
        return self.period_s is not None

    def tick(self) -> bool:
        """Call once per loop iteration; pings when half the watchdog interval has passed since the last ping.

        Returns:
            True if a ping was sent now.
        """
        if self.period_s is None:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.period_s:
            return False
        self._last = now
        sent = self.notifier.watchdog()
        self.pings += sent
        return sent
