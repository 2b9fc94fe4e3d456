"""Station events on record: each drift alarm raised and cleared is one row of the ``events`` table.

The daemon writes them from a thread of its own (:mod:`edgead.daemon.events`), never in a part's transaction: an
event that cannot be written costs a log line and a count, never a part. The MQTT north reads the table as its
second outbox (:class:`EventTable` has the outbox reader's ``after``/``last_id``/``get``, as
:class:`~edgead.records.store.RecordStore` has for parts), and ``edgead records DB --events`` lists it.

Example:
    >>> with RecordStore("records.sqlite") as store:                    # doctest: +SKIP
    ...     EventTable(store).add([StationEvent(1_700_000_000_000_000_000, "line3", EventKind.DRIFT,
    ...                                         EventState.RAISED, "brightness", -0.31, 0.15, 200, "drift alarm")])
    [1]
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

from edgead.records.store import RecordStore, Stamped, TimeBound, _where

COLUMNS = ("t_ns", "t_utc", "station", "kind", "state", "metric", "value", "bound", "window_parts", "message",
           "detail")
_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SELECT = f"SELECT id, {', '.join(c for c in COLUMNS if c != 't_utc')} FROM events"


class EventKind(str, Enum):
    """What a station event is about."""

    DRIFT = "drift"  # a drift signal (edgead.daemon.drift) went into or out of alarm


class EventState(str, Enum):
    """An alarm's edge."""

    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(frozen=True)
class StationEvent(Stamped):
    """One recorded event.

    Attributes:
        t_ns: wall-clock time of the event, ns since the epoch.
        station: the station's name.
        kind: :class:`EventKind`.
        state: :class:`EventState`.
        metric: what is watched (a drift signal: ``score``, ``brightness``, ``contrast``, ``alignment``).
        value: the signal's value when the edge happened (None: not finite).
        bound: the configured bound it is judged against.
        window_parts: the parts in the rolling window then.
        message: the log line.
        detail: more, as JSON (the recipe and model it was judged with, why it cleared).
        id: the row id (None before it is written).
    """

    t_ns: int
    station: str
    kind: EventKind
    state: EventState
    metric: str
    value: float | None
    bound: float | None
    window_parts: int | None
    message: str
    detail: Mapping[str, object] = field(default_factory=dict)
    id: int | None = None

    def to_row(self) -> tuple:
        """The values of :data:`COLUMNS`, in order."""
        return (int(self.t_ns), self.t_utc, str(self.station), EventKind(self.kind).value,
                EventState(self.state).value, str(self.metric), _finite(self.value), _finite(self.bound),
                None if self.window_parts is None else int(self.window_parts), str(self.message),
                json.dumps(dict(self.detail), sort_keys=True, default=str))

    @classmethod
    def from_row(cls, row: tuple) -> "StationEvent":
        """Inverse of :meth:`to_row` for a row of ``_SELECT`` (id first, no ``t_utc``)."""
        (id_, t_ns, station, kind, state, metric, value, bound, window, message, detail) = row
        return cls(int(t_ns), station, EventKind(kind), EventState(state), metric, value, bound, window, message,
                   json.loads(detail), int(id_))


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


class EventTable:
    """The ``events`` table of a record store: written by the daemon's event writer, read by outboxes and tools.

    Args:
        store: an open :class:`~edgead.records.store.RecordStore` (schema 6 or later).
    """

    def __init__(self, store: RecordStore):
        self.store = store
        self.path = store.path

    def add(self, events: list[StationEvent]) -> list[int]:
        """Write events in one transaction (all or none).

        Returns:
            Their row ids, in order.

        Raises:
            RecordError: the write failed; nothing was written.
        """
        statements = [(_INSERT, e.to_row()) for e in events]
        return self.store._transaction(statements) if statements else []  # noqa: SLF001 -- the store's own writer

    def after(self, event_id: int, limit: int = 512) -> list[StationEvent]:
        """Events whose row id is above ``event_id``, ascending (ids are never reused): the outbox read."""
        rows = self.store.read(f"{_SELECT} WHERE id > ? ORDER BY id LIMIT ?", (int(event_id), int(limit)))
        return [StationEvent.from_row(r) for r in rows]

    def last_id(self) -> int:
        """The highest event id ever given (0 when none was)."""
        rows = self.store.read("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        return int(rows[0][0]) if rows else 0

    def get(self, event_id: int) -> StationEvent | None:
        """The event with this row id, or None."""
        rows = self.store.read(f"{_SELECT} WHERE id = ?", (int(event_id),))
        return StationEvent.from_row(rows[0]) if rows else None

    def query(self, since: TimeBound = None, until: TimeBound = None, limit: int | None = None) -> list[StationEvent]:
        """Events in time order, optionally within ``[since, until)`` and at most ``limit`` of them."""
        where, params = _where(since, until, None)
        sql = f"{_SELECT}{where} ORDER BY t_ns, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [StationEvent.from_row(r) for r in self.store.read(sql, params)]
