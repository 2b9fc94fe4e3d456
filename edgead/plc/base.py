"""The PLC link interface the daemon uses, and the handshake every link follows.

Handshake (all protocols):

1. **Trigger in.** The PLC asks for an inspection; :meth:`PlcLink.wait_trigger` returns a :class:`Trigger` with the
   PLC's part id (or the station's own sequence number when the protocol carries no id). Links without a trigger
   source (``discrete``) return ``None`` at once and the daemon free-runs.
2. **Capture and decide** (the daemon), with ``set_status(ready=False, busy=True, fault=False)`` meanwhile.
3. **Result out.** :meth:`PlcLink.send_result` sends a :class:`PartResult` tagged with the part id of its trigger,
   so the PLC can match results to parts. Results go out in trigger order.

Never off by one: triggers that arrive while the station is busy wait in a FIFO of ``plc.queue_depth`` entries
and are answered in order, each with its own id. A trigger arriving when the FIFO is full is an **overrun**: it is
not inspected; the link answers it at once with ``FAULT`` and its own id (the parts already queued keep their
place), and counts it in :attr:`PlcLink.overruns`.

Fail-safe: on open every link drives its outputs to the fail-safe state (verdict = reject, ResultValid off, pass
line low), and again on close. The daemon maps any error or timeout of a part to ``plc.failsafe_verdict``
(default reject) with :meth:`PlcLink.send_failsafe`. A link never hangs: every read has a timeout, and a vanished
port raises :class:`~edgead.errors.PlcError` naming the port; noise never does (it is counted, logged when it
goes on, and reported in :attr:`PlcLink.line_problem`).

Verdict codes (registers; ASCII uses its templates, discrete the pass/reject lines): ``0`` = no result yet,
``1`` = pass, ``2`` = reject, ``3`` = no-read, ``4`` = fault.
"""
from __future__ import annotations

import abc
import collections
import threading
import time
from dataclasses import dataclass
from typing import Callable

from edgead.verdict import Verdict

VERDICT_CODES = {Verdict.ACCEPT: 1, Verdict.REJECT: 2, Verdict.NO_READ: 3, Verdict.FAULT: 4}
NO_RESULT_CODE = 0


@dataclass(frozen=True)
class Trigger:
    """A request from the PLC to inspect one part. ``t_ns`` is ``time.monotonic_ns()`` at reception.

    ``recipe`` and ``lot_id`` are what the PLC passed with the trigger (a recipe register, an ASCII telegram's
    ``R``/``L`` fields, OPC UA): None where it passed nothing, and the station keeps its current recipe and lot.
    A recipe is a number (a register) or a name (a telegram, OPC UA); :mod:`edgead.daemon.recipes` resolves it.
    ``error`` says what was wrong with them (lot registers holding non-text bytes): the part is answered fail-safe.
    ``requested_by`` is the OPC UA user whose ``Trigger`` call it is (None from a PLC).
    """

    part_id: int | str
    t_ns: int
    recipe: int | str | None = None
    lot_id: str | None = None
    error: str | None = None
    requested_by: str | None = None


@dataclass(frozen=True)
class PartResult:
    """The outcome of one part, tagged with the part id of its trigger and the station's sequence number."""

    part_id: int | str
    seq: int
    verdict: Verdict
    score: float


class TriggerQueue:
    """Thread-safe FIFO of triggers with a bound; an overrun hands the dropped trigger to ``on_overrun``.

    Args:
        depth: the most triggers waiting at once.
        on_overrun: called (outside the lock) with each trigger that did not fit.
    """

    def __init__(self, depth: int, on_overrun: Callable[[Trigger], None]):
        self._items: collections.deque[Trigger] = collections.deque()
        self._depth = depth
        self._on_overrun = on_overrun
        self._cond = threading.Condition()
        self._woken = False
        self.overruns = 0

    def put(self, trigger: Trigger) -> None:
        """Queue a trigger, or report it as an overrun when the queue is full."""
        with self._cond:
            full = len(self._items) >= self._depth
            if not full:
                self._items.append(trigger)
                self._cond.notify()
            else:
                self.overruns += 1
        if full:
            self._on_overrun(trigger)

    def get(self, timeout_ms: float) -> Trigger | None:
        """The oldest trigger, waiting at most ``timeout_ms``; None when none came, or at once when woken
        (:meth:`wake`, until :meth:`take_wake`)."""
        deadline = time.monotonic() + timeout_ms / 1000
        with self._cond:
            while not self._items:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._woken:
                    return None
                self._cond.wait(remaining)
            return self._items.popleft()

    def wake(self) -> None:
        """Make a waiting :meth:`get` (or the next one) return: the link failed, so the waiter sees the error, or
        the station has something else to do (an OPC UA request). Any thread."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def take_wake(self) -> bool:
        """Whether :meth:`wake` was called since the last call (and forget it)."""
        with self._cond:
            woken, self._woken = self._woken, False
            return woken

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class PlcLink(abc.ABC):
    """One open connection to the PLC. Use as a context manager; ``close()`` is idempotent.

    Example:
        >>> with open_plc("loop://", PlcConfig(protocol=Protocol.DISCRETE)) as plc:   # doctest: +SKIP
        ...     plc.send_result(PartResult(part_id=17, seq=1, verdict=Verdict.ACCEPT, score=0.12))
    """

    failsafe_verdict: Verdict = Verdict.REJECT
    wakeable: bool = False  # True: wake() ends a wait_trigger early; False: a caller with other work waits in slices
    overruns: int = 0
    line_problem: str | None = None  # set while the line is too noisy to carry telegrams (logged; not fatal)

    @abc.abstractmethod
    def wait_trigger(self, timeout_ms: float) -> Trigger | None:
        """The next trigger, waiting at most ``timeout_ms``.

        Returns:
            The oldest pending trigger, or None on timeout (at once for links without a trigger source).

        Raises:
            PlcError: if the port vanished or only garbage arrives.
        """

    def wake(self) -> None:
        """Make a :meth:`wait_trigger` in progress, or the next one, return None now (from any thread), so the
        station can take what else came in (an OPC UA request). A no-op where :attr:`wakeable` is False."""

    @abc.abstractmethod
    def send_result(self, result: PartResult) -> None:
        """Send one part's result (verdict, score, part id, sequence).

        Raises:
            PlcError: if the PLC cannot be reached (after the link's retries).
        """

    @abc.abstractmethod
    def set_status(self, ready: bool, busy: bool, fault: bool) -> None:
        """Publish the station status (no-op for protocols without a status channel)."""

    @abc.abstractmethod
    def heartbeat(self) -> None:
        """Toggle the heartbeat (no-op for protocols without one). Call it periodically."""

    @abc.abstractmethod
    def close(self) -> None:
        """Drive outputs to the fail-safe state (best effort) and release the port."""

    def send_failsafe(self, part_id: int | str, seq: int = 0) -> None:
        """Answer ``part_id`` with the configured fail-safe verdict (after an error or a timeout).

        Raises:
            PlcError: as :meth:`send_result`.
        """
        self.send_result(PartResult(part_id, seq, self.failsafe_verdict, float("nan")))

    def __enter__(self) -> "PlcLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
