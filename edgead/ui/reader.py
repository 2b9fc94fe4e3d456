"""The operator page's view of the record store: read-only SQLite connections, never a write.

Each call opens its own connection (``mode=ro``: it cannot write, and as a WAL reader it never blocks the daemon's
commits nor waits for them). A ``recipe`` column, when the store has one, is offered as a filter and a counter.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from edgead.errors import DataError
from edgead.records.compare import Comparison, compare
from edgead.records.store import utc_iso
from edgead.verdict import Verdict

LATENCY_WINDOW = 200  # parts the latency figures are taken over
_FIELDS = ("id", "t_ns", "part_id", "verdict", "score", "total_ms", "align_quality", "image_path", "error",
           "plc_answer", "model_hash")


@dataclass(frozen=True)
class Filters:
    """The gallery's filters (None: no bound). Times are wall-clock ns since the epoch."""

    verdicts: tuple[str, ...] = ("reject", "no-read", "fault")
    since_ns: int | None = None
    until_ns: int | None = None
    score_min: float | None = None
    score_max: float | None = None
    recipe: str | None = None
    before_id: int | None = None
    shadow_disagrees: bool = False  # only parts whose shadow verdict differs from the live one
    limit: int = 48


class RecordReader:
    """Read-only queries of one record store.

    Raises:
        DataError: the database does not exist (the page never creates one).
    """

    def __init__(self, database: Path, timeout_s: float = 2.0):
        self.database = Path(database)
        self.timeout_s = timeout_s
        self._columns: set[str] | None = None

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        if not self.database.is_file():
            raise DataError(f"record database {self.database} does not exist yet",
                            hint="start the station (edgead run) first; the page only reads its records")
        conn = sqlite3.connect(f"{self.database.resolve().as_uri()}?mode=ro", uri=True, timeout=self.timeout_s,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only=1")
            yield conn
        finally:
            conn.close()

    def columns(self, conn: sqlite3.Connection) -> set[str]:
        if self._columns is None:
            self._columns = {r[1] for r in conn.execute("PRAGMA table_info(parts)")}
        return self._columns

    def _select(self, conn: sqlite3.Connection) -> str:
        recipe = ", p.recipe" if "recipe" in self.columns(conn) else ", NULL"
        label = ("(SELECT label || '|' || who FROM labels l WHERE l.part_row = p.id ORDER BY l.id DESC LIMIT 1)"
                 if self._has_table(conn, "labels") else "NULL")
        shadow = "s.verdict, s.score" if self._has_table(conn, "shadow") else "NULL, NULL"
        join = " LEFT JOIN shadow s ON s.part_row = p.id" if self._has_table(conn, "shadow") else ""
        return (f"SELECT {', '.join('p.' + f for f in _FIELDS)}{recipe}, {label}, {shadow} FROM parts p{join}")

    @staticmethod
    def _has_table(conn: sqlite3.Connection, name: str) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None

    @staticmethod
    def _row(row: tuple) -> dict:
        out = dict(zip(_FIELDS + ("recipe", "label", "shadow_verdict", "shadow_score"), row))
        out["t_utc"] = utc_iso(out["t_ns"])
        out["has_image"] = out.pop("image_path") is not None
        label = out.pop("label")
        out["label"], out["labelled_by"] = (label.split("|", 1) if label else (None, None))
        out["model_hash"] = (out["model_hash"] or "")[:12]
        return out

    def last_id(self) -> int:
        with self.connect() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM parts").fetchone()[0])

    def recent(self, limit: int, after_id: int = 0) -> list[dict]:
        """The last ``limit`` parts with a row id above ``after_id``, newest first."""
        with self.connect() as conn:
            rows = conn.execute(f"{self._select(conn)} WHERE p.id > ? ORDER BY p.id DESC LIMIT ?",
                                (int(after_id), int(limit))).fetchall()
        return [self._row(r) for r in rows]

    def part(self, row_id: int) -> dict | None:
        with self.connect() as conn:
            row = conn.execute(f"{self._select(conn)} WHERE p.id = ?", (int(row_id),)).fetchone()
        return None if row is None else self._row(row)

    def image_path(self, row_id: int) -> Path | None:
        with self.connect() as conn:
            row = conn.execute("SELECT image_path FROM parts WHERE id = ?", (int(row_id),)).fetchone()
        return None if row is None or row[0] is None else Path(row[0])

    def gallery(self, f: Filters) -> list[dict]:
        """Parts with an archived image that pass the filters, newest first."""
        clauses, params = ["p.image_path IS NOT NULL"], []
        verdicts = [Verdict(v).value for v in f.verdicts]
        clauses.append(f"p.verdict IN ({', '.join('?' * len(verdicts))})" if verdicts else "0")
        params += verdicts
        for sql, value in (("p.t_ns >= ?", f.since_ns), ("p.t_ns < ?", f.until_ns), ("p.score >= ?", f.score_min),
                           ("p.score <= ?", f.score_max), ("p.id < ?", f.before_id)):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        with self.connect() as conn:
            if f.recipe and "recipe" in self.columns(conn):
                clauses.append("p.recipe = ?")
                params.append(f.recipe)
            elif f.recipe:
                return []  # a store without recipes has no part of this one
            if f.shadow_disagrees:
                if not self._has_table(conn, "shadow"):
                    return []
                clauses.append("s.verdict IS NOT NULL AND (s.verdict = 'accept') != (p.verdict = 'accept')")
            rows = conn.execute(f"{self._select(conn)} WHERE {' AND '.join(clauses)} ORDER BY p.id DESC LIMIT ?",
                                params + [int(f.limit)]).fetchall()
        return [self._row(r) for r in rows]

    def summary(self, since_ns: int | None = None) -> dict:
        """Counters by verdict (and recipe), the latency over the last parts, and the labels given."""
        where, params = ("WHERE t_ns >= ?", [since_ns]) if since_ns is not None else ("", [])
        with self.connect() as conn:
            counts = dict(conn.execute(f"SELECT verdict, COUNT(*) FROM parts {where} GROUP BY verdict", params))
            by_recipe = {}
            if "recipe" in self.columns(conn):
                for recipe, verdict, n in conn.execute(f"SELECT recipe, verdict, COUNT(*) FROM parts {where} "
                                                       "GROUP BY recipe, verdict", params):
                    by_recipe.setdefault(recipe or "-", {})[verdict] = n
            lat = sorted(r[0] for r in conn.execute("SELECT total_ms FROM parts WHERE total_ms IS NOT NULL "
                                                    "ORDER BY id DESC LIMIT ?", (LATENCY_WINDOW,)))
            labels = (dict(conn.execute("SELECT label, COUNT(*) FROM labels GROUP BY label"))
                      if self._has_table(conn, "labels") else {})
        return {
            "counts": {v.value: int(counts.get(v.value, 0)) for v in Verdict},
            "by_recipe": by_recipe,
            "latency_ms": {"p50": _pct(lat, 50), "p99": _pct(lat, 99), "max": lat[-1] if lat else None,
                           "parts": len(lat)},
            "labels": labels,
        }

    def compare(self) -> Comparison:
        with self.connect() as conn:
            if not self._has_table(conn, "shadow"):
                return Comparison()
            return compare(conn)

    def recipes(self) -> list[str]:
        with self.connect() as conn:
            if "recipe" not in self.columns(conn):
                return []
            return [r[0] for r in conn.execute("SELECT DISTINCT recipe FROM parts WHERE recipe IS NOT NULL")]


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]
