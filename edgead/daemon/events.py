"""Station events (drift alarms raised and cleared) into the record store, from a thread of its own.

An event is rare (an alarm's edge) and never part of a verdict, so it stays out of the part's transaction: the loop
hands it over with :meth:`EventWriter.submit` (a ``put_nowait``, after the part's answer) and this thread writes it
with its own SQLite connection. Its insert takes SQLite's write lock for one short transaction, as the
checkpointer's connection does; the loop's commit waits for it at most that long (``busy_timeout``).

A write the store refuses (disk full, I/O error) is logged and counted (``edgead_events_total{outcome=
"write_failed"}``) and retried every ``retry_s`` with the events behind it, in order; at most ``depth`` events wait,
beyond that the oldest is dropped and counted (``outcome="dropped"``). Nothing of it reaches the loop: a part is
never answered differently because an event was not recorded.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
from pathlib import Path

from edgead.daemon.drift import DriftEvent
from edgead.errors import RecordError
from edgead.records.events import EventKind, EventState, EventTable, StationEvent
from edgead.records.store import WRITER_CACHE_KIB, RecordStore, Synchronous

log = logging.getLogger(__name__)
_STOP = object()
DEPTH = 256
RETRY_S = 5.0


def drift_event(event: DriftEvent, station: str, t_ns: int, detail: dict) -> StationEvent:
    """The record of a drift monitor's event (pure).

    Example:
        >>> from edgead.daemon.drift import DriftSignal
        >>> e = drift_event(DriftEvent(DriftSignal.BRIGHTNESS, True, -0.31, 0.15, "drift alarm", 20), "line3", 5, {})
        >>> e.state.value, e.metric, e.window_parts
        ('raised', 'brightness', 20)
    """
    return StationEvent(t_ns, station, EventKind.DRIFT, EventState.RAISED if event.alarm else EventState.CLEARED,
                        event.signal.value, event.value, event.bound, event.parts, event.message, detail)


class EventWriter:
    """Writes :class:`~edgead.records.events.StationEvent` rows from its own thread (see the module docstring).

    Args:
        database: the record database (already opened and migrated by the station's store).
        synchronous: as the station's writer.
        metrics: the station's metrics (``edgead_events_total``), or None.
        depth: events waiting at most (queued and retried together).
        retry_s: how long after a refused write it is tried again.
    """

    def __init__(self, database: str | Path, synchronous: Synchronous = Synchronous.NORMAL, metrics=None,
                 depth: int = DEPTH, retry_s: float = RETRY_S):
        self.store = RecordStore(database, synchronous=synchronous, autocheckpoint=False, cache_kib=WRITER_CACHE_KIB)
        self.table = EventTable(self.store)
        self.metrics = metrics
        self.depth = max(1, depth)
        self.retry_s = retry_s
        self.counts = {"recorded": 0, "write_failed": 0, "dropped": 0}  # as edgead_events_total{outcome}
        self._queue: queue.Queue = queue.Queue(maxsize=self.depth)
        self._thread = threading.Thread(target=self._run, name="edgead-events", daemon=True)
        self._thread.start()

    def submit(self, event: StationEvent) -> bool:
        """Queue an event for the store (never blocks). False when the queue is full: it is dropped and counted."""
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            self._count("dropped")
            log.error("event not recorded (event queue full): %s", event.message)
            return False

    def _count(self, outcome: str, n: int = 1) -> None:
        self.counts[outcome] += n
        if self.metrics is not None:
            self.metrics.events.labels(outcome).inc(n)

    def _run(self) -> None:
        pending: collections.deque[StationEvent] = collections.deque()
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=self.retry_s if pending else None)
            except queue.Empty:
                item = None
            while item is not None:
                if item is _STOP:
                    stopping = True
                else:
                    if len(pending) == self.depth:
                        lost = pending.popleft()
                        self._count("dropped")
                        log.error("event not recorded (%d events wait for the store): %s", self.depth, lost.message)
                    pending.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            if pending:
                self._write(pending, last=stopping)

    def _write(self, pending: collections.deque, last: bool) -> None:
        try:
            self.table.add(list(pending))
        except RecordError as exc:
            self._count("write_failed")
            if last:
                for event in pending:
                    log.error("event not recorded (%s): %s", exc.message, event.message)
                self._count("dropped", len(pending))
                pending.clear()
            else:
                log.warning("%d event(s) not recorded yet (%s); retrying in %g s", len(pending), exc.message,
                            self.retry_s)
            return
        self._count("recorded", len(pending))
        pending.clear()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (one last try), stop the thread, close the connection (idempotent)."""
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout_s)
            except queue.Full:
                log.error("event writer: queue full at stop; %d event(s) not recorded", self._queue.qsize())
            self._thread.join(timeout_s)
        self.store.close()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
