"""Operators' labels of recorded parts, and the shadow model's verdicts beside the live ones.

A label says what a part really was, found after the fact: a false reject marked ``good``, an escape found
downstream marked ``defect``. Labels live in their own table (``labels``: the part's row, the label, who, when, a
note); a part's verdict as it was sent is never rewritten, and the newest label of a part is its ground truth (an
earlier one stays on record).

The shadow model's verdict of a part is one row of the ``shadow`` table, written by the station with the next
part's commit (:class:`ShadowRow` is a pending statement like :class:`~edgead.records.store.RowUpdate`).

Example:
    >>> with RecordStore("records.sqlite") as store:                    # doctest: +SKIP
    ...     add_label(store, find_part(store, "A17"), Label.GOOD, who="anna", note="scratch on the tray")
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from edgead.errors import DataError
from edgead.records.store import PartRecord, RecordStore, Stamped, utc_iso
from edgead.verdict import Verdict


class Label(str, Enum):
    """What a part really was, as an operator found it."""

    GOOD = "good"
    DEFECT = "defect"


@dataclass(frozen=True)
class LabelRecord(Stamped):
    """One label of one part (``part_row`` is the part's row id in ``parts``)."""

    part_row: int
    label: Label
    who: str
    t_ns: int
    note: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class ShadowRow:
    """The shadow model's verdict of one part, written with the station's next commit (a pending statement)."""

    part_row: int
    model_hash: str
    verdict: Verdict
    score: float | None
    raw_score: float | None
    infer_ms: float | None
    error: str | None = None

    def sql(self) -> tuple[str, list]:
        return ("INSERT OR REPLACE INTO shadow (part_row, model_hash, verdict, score, raw_score, infer_ms, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [int(self.part_row), self.model_hash, Verdict(self.verdict).value, _opt(self.score),
                 _opt(self.raw_score), _opt(self.infer_ms), self.error])


def _opt(value) -> float | None:
    return None if value is None else float(value)


def find_part(store: RecordStore, part_id: str, row: int | None = None) -> PartRecord:
    """The part to label: its row id when given, else the newest row with this part id (PLC ids repeat).

    Raises:
        DataError: no such part on record.
    """
    if row is not None:
        found = store.get(row)
        if found is None or (part_id and found.part_id != str(part_id)):
            raise DataError(f"records {store.path.name}: no part {part_id!r} in row {row}",
                            hint="edgead records DB --out - lists the parts and their row ids")
        return found
    hit = store.read("SELECT MAX(id) FROM parts WHERE part_id = ?", (str(part_id),))[0][0]
    if hit is None:
        raise DataError(f"records {store.path.name}: no part with id {part_id!r}",
                        hint="give the part id as the PLC sent it (edgead records DB lists them)")
    return store.get(int(hit))


def add_label(store: RecordStore, part: PartRecord | int, label: Label | str, who: str,
              note: str | None = None, t_ns: int | None = None) -> LabelRecord:
    """Label a recorded part (one committed row in ``labels``; the part's own row is not touched).

    Raises:
        DataError: an unknown label, no such part, or an empty ``who``.
        RecordError: the write failed.
    """
    try:
        label = Label(label)
    except ValueError:
        raise DataError(f"label {label!r} is not one of good, defect", hint="mark a part good or defect") from None
    if not str(who).strip():
        raise DataError("a label needs who gave it", hint="pass the operator's name")
    row_id = part.id if isinstance(part, PartRecord) else int(part)
    if store.get(row_id) is None:
        raise DataError(f"records {store.path.name}: no part in row {row_id}", hint="label a recorded part")
    t_ns = time.time_ns() if t_ns is None else int(t_ns)
    new_id = store.insert("INSERT INTO labels (part_row, label, who, t_ns, t_utc, note) VALUES (?, ?, ?, ?, ?, ?)",
                          (row_id, label.value, str(who).strip(), t_ns, utc_iso(t_ns), note))
    return LabelRecord(row_id, label, str(who).strip(), t_ns, note, new_id)


def latest_labels(conn_or_store) -> dict[int, LabelRecord]:
    """Part row -> its newest label (the part's ground truth)."""
    sql = ("SELECT l.part_row, l.label, l.who, l.t_ns, l.note, l.id FROM labels l "
           "JOIN (SELECT part_row, MAX(id) AS id FROM labels GROUP BY part_row) m ON l.id = m.id")
    rows = _rows(conn_or_store, sql)
    return {r[0]: LabelRecord(r[0], Label(r[1]), r[2], r[3], r[4], r[5]) for r in rows}


def _rows(conn_or_store, sql: str, params=()) -> list[tuple]:
    """Rows from a :class:`RecordStore` or a plain (read-only) :mod:`sqlite3` connection (the operator page's)."""
    if isinstance(conn_or_store, RecordStore):
        return conn_or_store.read(sql, params)
    return conn_or_store.execute(sql, params).fetchall()
