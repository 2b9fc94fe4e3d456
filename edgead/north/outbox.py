"""One table the MQTT publisher tails (the parts, the station events): what it reads, builds, and has acknowledged.

An outbox is the publisher's whole state for one table: the acknowledged position (a file of its own, see
:mod:`edgead.north.position`) and the messages in flight. The position only moves over a contiguous run of
acknowledged rows, so it never skips one; after a lost connection or a restart, publishing resumes right after it.

Example:
    >>> box = Outbox.for_events(EventTable(store), "edgead/line3/events", "line3", Path("r.sqlite.mqtt-ack"),
    ...                         from_start=True)                                              # doctest: +SKIP
    >>> box.fetch(room=20)                                  # rows to publish, in id order   # doctest: +SKIP
"""
from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import Callable

from edgead.north.message import EVENT_SCHEMA_PATH, PartMessageSchema, event_message, part_message
from edgead.north.position import AckPosition, read_position, resume_after, write_position
from edgead.records.events import EventTable
from edgead.records.store import RecordStore, settled


class Outbox:
    """A table as an outbox.

    Args:
        name: ``parts`` or ``events`` (the id key of its invalid-message notes: ``record_id`` / ``event_id``).
        topic: where its messages go.
        reader: the table (``after(id, limit)``, ``last_id()``, ``get(id)``, ``path``).
        message: row -> message dict (pure).
        schema: the compiled schema its messages are checked against.
        ack_path: the acknowledged position's file.
        from_start: on a first start (no ``ack_path``), publish every stored row (else only new ones).
        settle: which leading rows of a fetch may go out now (parts wait for their answer's update).
    """

    def __init__(self, name: str, topic: str, reader, message: Callable[[object], dict], schema: PartMessageSchema,
                 ack_path: Path, from_start: bool, settle: Callable[[list], list] = lambda rows: rows):
        self.name, self.topic, self.reader, self.message, self.schema = name, topic, reader, message, schema
        self.ack_path, self.settle = ack_path, settle
        self.id_key = "record_id" if name == "parts" else "event_id"
        self.acknowledged_id = resume_after(reader, read_position(ack_path), from_start)
        self.acknowledged = 0  # PUBACKs received for its rows
        self.acked_event = threading.Condition()
        self._flushed_id, self._flushed_at, self._ack_t_ns = self.acknowledged_id, 0.0, 0
        self.sent: collections.deque[tuple[int, int]] = collections.deque()  # (row id, t_ns) in publish order
        self._acked: set[int] = set()
        self.last_sent = self.acknowledged_id
        self.last_poll = 0.0

    @classmethod
    def for_parts(cls, store: RecordStore, topic: str, station: str, ack_path: Path, from_start: bool) -> "Outbox":
        return cls("parts", topic, store, lambda r: part_message(r, station), PartMessageSchema(), ack_path,
                   from_start, settled)

    @classmethod
    def for_events(cls, table: EventTable, topic: str, station: str, ack_path: Path, from_start: bool) -> "Outbox":
        return cls("events", topic, table, lambda e: event_message(e, station), PartMessageSchema(EVENT_SCHEMA_PATH),
                   ack_path, from_start)

    def restart(self) -> None:
        """A new connection: what was in flight and not acknowledged is sent again, from the position on."""
        self.sent.clear()
        self._acked.clear()
        self.last_sent = self.acknowledged_id
        self.last_poll = 0.0

    def fetch(self, room: int, poll_s: float) -> list:
        """The rows to publish now (at most ``room``; none before ``poll_s`` since the last read, unless that read
        was full)."""
        now = time.monotonic()
        if room <= 0 or now - self.last_poll < poll_s:
            return []
        fetched = self.reader.after(self.last_sent, room)
        rows = self.settle(fetched)
        self.last_poll = 0.0 if len(fetched) == room and len(rows) == room else now
        return rows

    def sending(self, row) -> None:
        self.sent.append((row.id, row.t_ns))
        self.last_sent = row.id

    def acked(self, row_id: int) -> None:
        """A PUBACK for one of its rows: the position moves over the contiguous run acknowledged."""
        self.acknowledged += 1
        self._acked.add(row_id)
        while self.sent and self.sent[0][0] in self._acked:
            done, self._ack_t_ns = self.sent.popleft()
            self._acked.discard(done)
            with self.acked_event:
                self.acknowledged_id = done
                self.acked_event.notify_all()

    def wait(self, row_id: int, timeout_s: float) -> bool:
        """Wait until every row up to ``row_id`` is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self.acked_event:
            while self.acknowledged_id < row_id:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.acked_event.wait(remaining)
        return True

    def flush(self, force: bool, every_s: float) -> None:
        """Store the acknowledged position (at most every ``every_s`` unless ``force``).

        Raises:
            EdgeadError: the position file cannot be written.
        """
        if self.acknowledged_id == self._flushed_id or not self._ack_t_ns:
            return
        now = time.monotonic()
        if not force and now - self._flushed_at < every_s:
            return
        write_position(self.ack_path, AckPosition(self.acknowledged_id, self._ack_t_ns))
        self._flushed_id, self._flushed_at = self.acknowledged_id, now
