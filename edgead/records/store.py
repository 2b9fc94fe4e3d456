"""One SQLite row per inspected part, durable across ``kill -9`` and power cuts.

Durability choices:

* ``journal_mode=WAL``: writers append to the write-ahead log, readers (an export, a dashboard) never block the
  daemon, and a crash at any instant leaves a valid database (the WAL is replayed or ignored on next open).
* ``synchronous=FULL``: every commit fsyncs the WAL before ``add`` returns. With ``NORMAL`` a WAL database
  survives ``kill -9`` intact but a *power cut* may roll back the last commits, which a station that just told
  the PLC "reject" must not lose. The cost is one fsync per part (about a millisecond on eMMC/SSD), paid off the
  hot path by the daemon's writer thread.
* Commit per part (``add``), not delayed batches: "committed" then means "on disk", so a record reported as
  written is never lost, and at inline rates (at most a few tens of parts per second) the fsync is affordable.
  ``add_many`` commits a whole backlog in one transaction when a writer has fallen behind.

``add`` does no schema work: the INSERT text is a constant, so :mod:`sqlite3` reuses its prepared statement from
the connection's statement cache.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import IO, Iterable, Iterator, Mapping, Union

from edgead.errors import ConfigError, EdgeadError
from edgead.stages import TIMINGS
from edgead.verdict import Verdict

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
APP_NAME = "edgead-records"
APPLICATION_ID = 0x45444741  # "EDGA": PRAGMA application_id, marks the file as ours
SQLITE_MAGIC = b"SQLite format 3\x00"
_FETCH_ROWS = 512

TimeBound = Union[datetime, int, None]  # an aware datetime (naive = UTC) or wall-clock ns since the epoch

COLUMNS = (
    "t_utc", "t_ns", "part_id", "seq", "verdict", "score", "raw_score",
    "capture_ms", "align_ms", "infer_ms", "decide_ms", "signal_ms", "total_ms",
    "model_hash", "align_quality", "roi_scores", "image_path", "error",
)  # fmt: skip

# Migrations by version: MIGRATIONS[v] takes a database at version v-1 to version v.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE parts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            t_utc TEXT NOT NULL, t_ns INTEGER NOT NULL,
            part_id TEXT NOT NULL, seq INTEGER NOT NULL, verdict TEXT NOT NULL,
            score REAL, raw_score REAL,
            capture_ms REAL, align_ms REAL, infer_ms REAL, decide_ms REAL, signal_ms REAL, total_ms REAL,
            model_hash TEXT NOT NULL, align_quality REAL, roi_scores TEXT NOT NULL,
            image_path TEXT, error TEXT)""",
        "CREATE INDEX parts_t_ns ON parts (t_ns)",
        "CREATE INDEX parts_verdict_t_ns ON parts (verdict, t_ns)",
    ),
}

_INSERT = f"INSERT INTO parts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SELECT = f"SELECT id, {', '.join(COLUMNS)} FROM parts"


def utc_iso(t_ns: int) -> str:
    """Wall-clock ``t_ns`` as ISO 8601 UTC with microseconds, e.g. ``2026-11-22T08:00:00.000001Z``."""
    seconds, ns = divmod(int(t_ns), 1_000_000_000)  # integer maths: a float loses the microseconds
    return f"{datetime.fromtimestamp(seconds, timezone.utc):%Y-%m-%dT%H:%M:%S}.{ns // 1000:06d}Z"


@dataclass(frozen=True)
class PartRecord:
    """What the station knows about one part. Latencies in milliseconds, scores as the engine gave them.

    Attributes:
        t_ns: wall-clock capture time, ns since the epoch (``time.time_ns()``).
        part_id: the part's id (from the PLC, a barcode, or ``seq``).
        seq: the station's sequence number.
        verdict: what was sent to the PLC.
        score: normalised image score (``>= 0.5`` rejects); None when no inference ran.
        raw_score: raw image score; None when no inference ran.
        capture_ms, align_ms, infer_ms, decide_ms, signal_ms, total_ms: per-stage latencies (None = not run).
        model_hash: ``bundle_sha256`` of the model that judged the part.
        align_quality: the aligner's fit score, None when alignment did not run.
        roi_scores: per-ROI normalised scores, stored as JSON.
        image_path: where the archived image lies, if it was kept.
        error: what went wrong, for ``fault``/``no-read`` parts.
        id: the row id, set by the store (None before ``add``).
    """

    t_ns: int
    part_id: str
    seq: int
    verdict: Verdict
    score: float | None = None
    raw_score: float | None = None
    capture_ms: float | None = None
    align_ms: float | None = None
    infer_ms: float | None = None
    decide_ms: float | None = None
    signal_ms: float | None = None
    total_ms: float | None = None
    model_hash: str = ""
    align_quality: float | None = None
    roi_scores: Mapping[str, float] = field(default_factory=dict)
    image_path: str | None = None
    error: str | None = None
    id: int | None = None

    @classmethod
    def now(cls, **fields) -> "PartRecord":
        """A record stamped with the current wall-clock time (``t_ns = time.time_ns()``)."""
        return cls(t_ns=time.time_ns(), **fields)

    @property
    def t_utc(self) -> str:
        """The capture time as ISO 8601 UTC."""
        return utc_iso(self.t_ns)

    def latencies_ms(self) -> dict[str, float | None]:
        """Per-stage latencies keyed by stage name (``capture`` ... ``total``)."""
        return {stage: getattr(self, f"{stage}_ms") for stage in TIMINGS}

    def to_row(self) -> tuple:
        """The values of :data:`COLUMNS`, in order, as SQLite stores them."""
        verdict = Verdict(self.verdict)
        return (
            self.t_utc, int(self.t_ns), str(self.part_id), int(self.seq), verdict.value,
            _opt_float(self.score), _opt_float(self.raw_score),
            *(_opt_float(v) for v in self.latencies_ms().values()),
            self.model_hash, _opt_float(self.align_quality),
            json.dumps({str(k): float(v) for k, v in self.roi_scores.items()}),
            None if self.image_path is None else str(self.image_path), self.error,
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: tuple) -> "PartRecord":
        """Inverse of :meth:`to_row` for a ``SELECT id, <COLUMNS>`` row."""
        values = dict(zip(("id",) + COLUMNS, row))
        del values["t_utc"]
        values["verdict"] = Verdict(values["verdict"])
        values["roi_scores"] = json.loads(values["roi_scores"])
        return cls(**values)


def _opt_float(value) -> float | None:
    return None if value is None else float(value)


def _to_ns(bound: TimeBound) -> int | None:
    if bound is None or isinstance(bound, int):
        return bound
    if bound.tzinfo is None:
        bound = bound.replace(tzinfo=timezone.utc)
    return int(round(bound.timestamp() * 1e6)) * 1000


class RecordStore:
    """The part-record database. A context manager; safe to share between threads.

    Args:
        path: the SQLite file; created (with its parent directory) if missing.
        timeout_s: how long to wait for a lock held by another process (an export, say).

    Raises:
        ConfigError: if ``path`` is not an SQLite database, belongs to another application, is corrupt, or was
            written by a newer edgead.

    Example:
        >>> with RecordStore(tmp / "records.db") as store:                  # doctest: +SKIP
        ...     row_id = store.add(PartRecord.now(part_id="A1", seq=1, verdict=Verdict.ACCEPT))
        ...     store.counts()[Verdict.ACCEPT]
        1
    """

    def __init__(self, path: str | PathLike, *, timeout_s: float = 5.0):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._check_header()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._schema_version()  # identify before changing anything: a foreign file stays untouched
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._corrupt(exc) from exc
        except BaseException:
            self.close()
            raise

    # -- opening -------------------------------------------------------------------------------------------------

    def _check_header(self) -> None:
        """Refuse a non-SQLite file before SQLite gets to it (it would only fail at the first query)."""
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
        except FileNotFoundError:
            return
        except IsADirectoryError as exc:
            raise ConfigError(f"records database {str(self.path)!r} is a directory", hint="give a file path") from exc
        if head and head != SQLITE_MAGIC:
            raise ConfigError(
                f"records database {str(self.path)!r} is not an SQLite database",
                hint="point records at a new file, or move this one away if it is not needed",
            )

    def _corrupt(self, exc: BaseException) -> ConfigError:
        hint = "move it aside (keep it for analysis) and restart; a new database will be created"
        return ConfigError(f"records database {str(self.path)!r} is unreadable or corrupt: {exc}", hint=hint)

    def _configure(self) -> None:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ConfigError(
                f"records database {str(self.path)!r}: cannot enable WAL mode (got {mode!r})",
                hint="put the database on a local filesystem (not NFS, not a read-only mount)",
            )
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")

    def _schema_version(self) -> int:
        conn = self._conn
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if not tables and app_id in (0, APPLICATION_ID):
            return 0
        meta = dict(conn.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if app_id != APPLICATION_ID or meta.get("app") != APP_NAME:
            raise ConfigError(
                f"records database {str(self.path)!r} belongs to another application "
                f"(tables: {', '.join(sorted(tables)) or 'none'})",
                hint="point records at a new file; edgead never writes into a foreign database",
            )
        return int(meta["schema_version"])

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")  # one writer migrates; the others wait, then see the new version
        try:
            version = self._schema_version()
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"records database {str(self.path)!r} has schema version {version}, this edgead reads up to "
                    f"{SCHEMA_VERSION}",
                    hint="upgrade edgead, or point records at a new file",
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)
                log.info("records database %s migrated to schema version %d", self.path, target)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [("app", APP_NAME), ("schema_version", str(SCHEMA_VERSION))],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- writing -------------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise EdgeadError(f"records database {str(self.path)!r} is closed", hint="open a new RecordStore")
        return self._conn

    def _write_failed(self, exc: sqlite3.Error) -> EdgeadError:
        hint = "check free disk space and that the state directory is writable"
        return EdgeadError(f"records database {str(self.path)!r}: write failed: {exc}", hint=hint)

    def add(self, record: PartRecord) -> int:
        """Insert and commit one record; when this returns, the record is on disk.

        Args:
            record: the part (its ``id`` is ignored).

        Returns:
            The new row id.

        Raises:
            EdgeadError: if the write fails (disk full, read-only filesystem).
            ValueError: if ``record.verdict`` is not a :class:`Verdict`.
        """
        row = record.to_row()
        with self._lock:
            try:
                return self._connection().execute(_INSERT, row).lastrowid
            except sqlite3.Error as exc:
                raise self._write_failed(exc) from exc

    def add_many(self, records: Iterable[PartRecord]) -> list[int]:
        """Insert records in one transaction (all or none), e.g. a writer queue's backlog.

        Args:
            records: the parts, in order.

        Returns:
            Their row ids, in order.

        Raises:
            EdgeadError: if the write fails; nothing of the batch is stored then.
        """
        rows = [r.to_row() for r in records]
        ids = []
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for row in rows:
                        ids.append(conn.execute(_INSERT, row).lastrowid)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._write_failed(exc) from exc
        return ids

    # -- reading -------------------------------------------------------------------------------------------------

    def query(
        self,
        since: TimeBound = None,
        until: TimeBound = None,
        verdict: Verdict | str | None = None,
        limit: int | None = None,
    ) -> Iterator[PartRecord]:
        """Records in capture-time order, fetched in chunks.

        Args:
            since: first capture time included (aware datetime, naive = UTC, or ns since the epoch).
            until: capture times from here on are excluded.
            verdict: only this verdict.
            limit: at most this many records.

        Returns:
            An iterator of :class:`PartRecord` with ``id`` set.
        """
        where, params = _where(since, until, verdict)
        sql = f"{_SELECT}{where} ORDER BY t_ns, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            cursor = self._connection().execute(sql, params)
        while True:
            with self._lock:
                rows = cursor.fetchmany(_FETCH_ROWS)
            if not rows:
                return
            yield from (PartRecord.from_row(r) for r in rows)

    def after(self, row_id: int, limit: int = _FETCH_ROWS) -> list[PartRecord]:
        """Records whose row id is above ``row_id``, in row-id (commit) order: the outbox read of a publisher.

        Row ids only grow (``AUTOINCREMENT``: an id is never reused, even after rows were deleted), so a reader
        that remembers the last id it handled resumes exactly after it.

        Args:
            row_id: the last id already handled (0: from the first record).
            limit: at most this many records.

        Returns:
            Up to ``limit`` :class:`PartRecord` with ``id`` set, ascending.
        """
        with self._lock:
            rows = self._connection().execute(f"{_SELECT} WHERE id > ? ORDER BY id LIMIT ?",
                                              (int(row_id), int(limit))).fetchall()
        return [PartRecord.from_row(r) for r in rows]

    def last_id(self) -> int:
        """The highest row id ever given (0 for an empty database)."""
        with self._lock:
            row = self._connection().execute("SELECT seq FROM sqlite_sequence WHERE name = 'parts'").fetchone()
        return int(row[0]) if row else 0

    def get(self, row_id: int) -> PartRecord | None:
        """The record with this row id, or None."""
        with self._lock:
            row = self._connection().execute(f"{_SELECT} WHERE id = ?", (int(row_id),)).fetchone()
        return None if row is None else PartRecord.from_row(row)

    def counts(self, since: TimeBound = None, until: TimeBound = None) -> dict[Verdict, int]:
        """How many parts got each verdict (every verdict present, zeros included).

        Args:
            since: first capture time included.
            until: capture times from here on are excluded.

        Returns:
            ``{Verdict.ACCEPT: n, Verdict.REJECT: n, ...}``.
        """
        where, params = _where(since, until, None)
        with self._lock:
            rows = self._connection().execute(f"SELECT verdict, COUNT(*) FROM parts{where} GROUP BY verdict", params)
            found = dict(rows.fetchall())
        return {v: int(found.get(v.value, 0)) for v in Verdict}

    def export_csv(
        self,
        dest: str | PathLike | IO[str],
        since: TimeBound = None,
        until: TimeBound = None,
        verdict: Verdict | str | None = None,
    ) -> int:
        """Write the selected records as CSV (see :func:`edgead.records.export.write_csv`).

        Args:
            dest: a path (written atomically) or an open text file.
            since, until, verdict: as in :meth:`query`.

        Returns:
            The number of records written.
        """
        from edgead.records.export import write_csv

        return write_csv(self.query(since=since, until=until, verdict=verdict), dest)

    def integrity_check(self) -> list[str]:
        """Run ``PRAGMA integrity_check`` (reads the whole file: not for the hot path).

        Returns:
            The problems found; empty when the database is sound.
        """
        with self._lock:
            rows = [r[0] for r in self._connection().execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    def close(self) -> None:
        """Close the database (idempotent). SQLite checkpoints the WAL when the last connection closes."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "RecordStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _where(since: TimeBound, until: TimeBound, verdict: Verdict | str | None) -> tuple[str, list]:
    clauses, params = [], []
    if since is not None:
        clauses.append("t_ns >= ?")
        params.append(_to_ns(since))
    if until is not None:
        clauses.append("t_ns < ?")
        params.append(_to_ns(until))
    if verdict is not None:
        clauses.append("verdict = ?")
        params.append(Verdict(verdict).value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

