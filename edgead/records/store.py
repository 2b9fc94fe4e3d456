"""One SQLite row per inspected part, committed before the PLC gets the part's answer.

Durability choices (what a station guarantees is in docs/station-setup.md, "What is on record"):

* ``journal_mode=WAL``: a commit appends to the write-ahead log; readers (an export, a dashboard) never block the
  daemon, and a crash at any instant leaves a valid database (the WAL is replayed or ignored on next open).
* ``synchronous=NORMAL`` (``storage.synchronous: normal``, the default): a commit is a ``write()`` into the WAL, no
  fsync. Once it returns, the row survives a ``kill -9``, a crash or a watchdog kill of the process (the data is
  in the kernel's page cache); it survives a *power cut* once a checkpoint (or the kernel's writeback) has put it
  on disk. The database itself is never corrupted by a power cut. ``synchronous=FULL`` (``storage.synchronous:
  full``) fsyncs the WAL in every commit: every answered part survives a power cut too, at the price of one fsync
  on the hot path per part.
* Checkpoints (the WAL copied into the database file, both fsynced) run off the hot path: the daemon's connection
  has ``wal_autocheckpoint=0`` and a :class:`Checkpointer` thread with its own connection checkpoints every
  ``storage.checkpoint_interval_s`` (PASSIVE: never waits for, nor blocks, the writer), and once more on stop
  (TRUNCATE: the WAL file shrinks to zero). When a checkpoint copied the whole WAL, that thread starts the WAL over
  itself: SQLite fsyncs the header of a restarted WAL, and the station's next commit (the first part after a
  pause) would otherwise pay for it.
* :meth:`RecordStore.commit` writes one part and the pending updates of earlier parts (their answer, its latency,
  the archived image's path) in one transaction: one commit per part.

Schema versions (``meta.schema_version``, ``PRAGMA application_id``): :data:`MIGRATIONS` takes a database from each
version to the next when a newer edgead opens it; an older edgead refuses a newer database. Add columns with a new
migration (recipes, lot ids, the ``events`` and ``audit`` tables), never by editing an old one.

``add`` does no schema work: the INSERT text is a constant, so :mod:`sqlite3` reuses its prepared statement from
the connection's statement cache.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import IO, Iterable, Iterator, Mapping, Union

from edgead.errors import ConfigError, EdgeadError, RecordError
from edgead.stages import TIMINGS
from edgead.verdict import Verdict

log = logging.getLogger(__name__)

SCHEMA_VERSION = 7
APP_NAME = "edgead-records"
APPLICATION_ID = 0x45444741  # "EDGA": PRAGMA application_id, marks the file as ours
SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_MAX_PATH = 512  # bytes: SQLite's unix VFS refuses a longer database path (MAX_PATHNAME)
WRITER_CACHE_KIB = 256  # the station's connections: enough for the tail pages of the table and its indexes
WAL_SIZE_LIMIT = 64 << 20  # bytes the WAL file keeps after a checkpoint (PRAGMA journal_size_limit)
_FETCH_ROWS = 512


class Synchronous(str, Enum):
    """``storage.synchronous``: what a commit waits for (see the module docstring)."""

    NORMAL = "normal"  # the WAL write: survives a process kill; a power cut may lose the last seconds
    FULL = "full"  # also an fsync of the WAL: survives a power cut, one fsync per part on the hot path


class Checkpoint(str, Enum):
    """SQLite checkpoint modes used by edgead."""

    PASSIVE = "PASSIVE"  # as much as possible without waiting for the writer or readers
    TRUNCATE = "TRUNCATE"  # everything, then the WAL file is truncated to zero (on stop)

TimeBound = Union[datetime, int, None]  # an aware datetime (naive = UTC) or wall-clock ns since the epoch

COLUMNS = (
    "t_utc", "t_ns", "part_id", "seq", "verdict", "score", "raw_score",
    "capture_ms", "align_ms", "infer_ms", "decide_ms", "signal_ms", "total_ms",
    "model_hash", "align_quality", "roi_scores", "image_path", "error",
    "record_ms", "plc_answer", "recipe", "lot_id", "queue_ms", "image_ms", "requested_by",
)  # fmt: skip
UPDATABLE = ("record_ms", "signal_ms", "total_ms", "plc_answer", "image_path", "image_ms")  # set after the commit

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
    2: (  # record before answer: the commit's own latency, and what the PLC was sent (NULL: not confirmed)
        "ALTER TABLE parts ADD COLUMN record_ms REAL",
        "ALTER TABLE parts ADD COLUMN plc_answer TEXT",
    ),
    3: (  # operators' labels (who, when; the verdict as sent is never rewritten) and the shadow model's verdicts
        """CREATE TABLE labels (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            part_row INTEGER NOT NULL REFERENCES parts (id),
            label TEXT NOT NULL CHECK (label IN ('good', 'defect')),
            who TEXT NOT NULL, t_ns INTEGER NOT NULL, t_utc TEXT NOT NULL, note TEXT)""",
        "CREATE INDEX labels_part_row ON labels (part_row, id)",
        """CREATE TABLE shadow (
            part_row INTEGER PRIMARY KEY REFERENCES parts (id),
            model_hash TEXT NOT NULL, verdict TEXT NOT NULL, score REAL, raw_score REAL, infer_ms REAL,
            error TEXT)""",
    ),
    4: (  # recipes and lots: the recipe that judged the part ('' on a one-model station), the lot the PLC named
        "ALTER TABLE parts ADD COLUMN recipe TEXT",
        "ALTER TABLE parts ADD COLUMN lot_id TEXT",
    ),
    5: (  # the hot loop's queueing: how long the part waited for the loop, and its image for the archive
        "ALTER TABLE parts ADD COLUMN queue_ms REAL",
        "ALTER TABLE parts ADD COLUMN image_ms REAL",
    ),
    6: (  # station events (drift alarms raised and cleared): recorded, and the MQTT north's second outbox
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            t_ns INTEGER NOT NULL, t_utc TEXT NOT NULL, station TEXT NOT NULL,
            kind TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('raised', 'cleared')),
            metric TEXT NOT NULL, value REAL, bound REAL, window_parts INTEGER,
            message TEXT NOT NULL, detail TEXT NOT NULL)""",
        "CREATE INDEX events_t_ns ON events (t_ns)",
    ),
    7: (  # who asked: the OPC UA requests with their user and result (edgead.records.audit), and a part's requester
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            t_ns INTEGER NOT NULL, t_utc TEXT NOT NULL, source TEXT NOT NULL,
            who TEXT NOT NULL, role TEXT NOT NULL, login TEXT NOT NULL, client TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, arguments TEXT NOT NULL,
            status TEXT NOT NULL, detail TEXT)""",
        "CREATE INDEX audit_t_ns ON audit (t_ns)",
        "ALTER TABLE parts ADD COLUMN requested_by TEXT",
    ),
}

_INSERT = f"INSERT INTO parts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_SELECT = f"SELECT id, {', '.join(COLUMNS)} FROM parts"


_NO_SCORES: Mapping[str, float] = MappingProxyType({})
_last_second: tuple[int, str] = (-1, "")  # the last second utc_iso formatted, and its text (parts come many a second)


def utc_iso(t_ns: int) -> str:
    """Wall-clock ``t_ns`` as ISO 8601 UTC with microseconds, e.g. ``2026-11-22T08:00:00.000001Z``."""
    global _last_second
    seconds, ns = divmod(int(t_ns), 1_000_000_000)  # integer maths: a float loses the microseconds
    last = _last_second
    if last[0] != seconds:
        last = _last_second = (seconds, f"{datetime.fromtimestamp(seconds, timezone.utc):%Y-%m-%dT%H:%M:%S}")
    return last[1] + "." + str(1_000_000 + ns // 1000)[1:] + "Z"  # concatenation: the loop's cheapest


def scores_json(scores: Mapping[str, float]) -> str:
    """Per-ROI scores as the ``roi_scores`` column's JSON object (what ``json.dumps`` writes, keys as text)."""
    if len(scores) == 1:  # a station judged whole, or one ROI: the part's hot path
        (key, value), = scores.items()
        value = float(value)
        if isinstance(key, str) and math.isfinite(value):
            return "{" + _json_key(key) + ": " + repr(value) + "}"
    return json.dumps({str(k): float(v) for k, v in scores.items()})


@functools.lru_cache(maxsize=256)
def _json_key(key: str) -> str:
    return json.dumps(key)


def parse_iso_ns(text: str | None, what: str = "time") -> int | None:
    """An ISO 8601 time (naive = UTC) as wall-clock ns since the epoch; None for None or ''.

    Raises:
        ConfigError: naming ``what``, when the text is not an ISO time.
    """
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: not an ISO time, e.g. 2026-11-22T08:00:00") from None
    return _to_ns(when)


class Stamped:
    """A record stamped with wall-clock ``t_ns`` (ns since the epoch): parts, audit rows, labels."""

    t_ns: int

    @classmethod
    def now(cls, **fields):
        """A record stamped with the current wall-clock time (``t_ns = time.time_ns()``)."""
        return cls(t_ns=time.time_ns(), **fields)

    @property
    def t_utc(self) -> str:
        """``t_ns`` as ISO 8601 UTC."""
        return utc_iso(self.t_ns)


@dataclass(frozen=True)
class PartRecord(Stamped):
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
        image_path: where the archived image lies, if it was kept (set after the commit, off the hot path).
        error: what went wrong, for ``fault``/``no-read`` parts.
        record_ms: how long the commit of this row took.
        plc_answer: the verdict the PLC was sent (a fault goes out as ``plc.failsafe_verdict``); None while not
            confirmed: the station stopped between the commit and the confirmation, or the answer failed (``error``
            says so).
        recipe: the recipe that judged the part (``""`` on a station without recipes; None in rows written
            before schema version 4).
        lot_id: the lot the PLC (or OPC UA) named for this part, None when none.
        queue_ms: how long the part waited for the loop (see :mod:`edgead.stages`); None when it did not.
        image_ms: from the answer to the image archived (its wait in the image queue included, set off the hot
            path); None when no image was archived.
        requested_by: the OPC UA user whose ``Trigger`` call asked for the part; None for PLC and camera triggers
            (and rows written before schema version 7).
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
    record_ms: float | None = None
    plc_answer: str | None = None
    recipe: str | None = ""
    lot_id: str | None = None
    queue_ms: float | None = None
    image_ms: float | None = None
    requested_by: str | None = None
    id: int | None = None

    def latencies_ms(self) -> dict[str, float | None]:
        """Per-stage latencies keyed by stage name (``capture`` ... ``total``, see :mod:`edgead.stages`)."""
        return {stage: getattr(self, f"{stage}_ms") for stage in TIMINGS}

    def to_row(self) -> tuple:
        """The values of :data:`COLUMNS`, in order, as SQLite stores them (:func:`part_row`)."""
        return part_row(self.t_ns, self.part_id, self.seq, self.verdict, self.score, self.raw_score, self.capture_ms,
                        self.align_ms, self.infer_ms, self.decide_ms, self.signal_ms, self.total_ms, self.model_hash,
                        self.align_quality, self.roi_scores, self.image_path, self.error, self.record_ms,
                        self.plc_answer, self.recipe, self.lot_id, self.queue_ms, self.image_ms, self.requested_by)

    @classmethod
    def from_row(cls, row: tuple) -> "PartRecord":
        """Inverse of :meth:`to_row` for a ``SELECT id, <COLUMNS>`` row."""
        values = dict(zip(("id",) + COLUMNS, row))
        del values["t_utc"]
        values["verdict"] = Verdict(values["verdict"])
        values["roi_scores"] = json.loads(values["roi_scores"])
        return cls(**values)


def part_row(t_ns: int, part_id: str, seq: int, verdict: Verdict | str, score=None, raw_score=None, capture_ms=None,
             align_ms=None, infer_ms=None, decide_ms=None, signal_ms=None, total_ms=None, model_hash: str = "",
             align_quality=None, roi_scores: Mapping[str, float] = _NO_SCORES, image_path=None, error=None,
             record_ms=None, plc_answer=None, recipe: str | None = "", lot_id=None, queue_ms=None, image_ms=None,
             requested_by=None) -> tuple:
    """A part's row: the values of :data:`COLUMNS`, in order, as SQLite stores them (the arguments are
    :class:`PartRecord`'s fields, in its order). :meth:`PartRecord.to_row` is this; the station's loop calls it
    directly, without building the record first (the record is built only when the store refuses the row)."""
    return (
        utc_iso(t_ns), int(t_ns), str(part_id), int(seq),
        verdict.value if type(verdict) is Verdict else Verdict(verdict).value,
        None if score is None else float(score), None if raw_score is None else float(raw_score),
        None if capture_ms is None else float(capture_ms), None if align_ms is None else float(align_ms),
        None if infer_ms is None else float(infer_ms), None if decide_ms is None else float(decide_ms),
        None if signal_ms is None else float(signal_ms), None if total_ms is None else float(total_ms),
        model_hash, None if align_quality is None else float(align_quality),
        scores_json(roi_scores),
        None if image_path is None else str(image_path), error,
        None if record_ms is None else float(record_ms), None if plc_answer is None else Verdict(plc_answer).value,
        recipe, lot_id,
        None if queue_ms is None else float(queue_ms), None if image_ms is None else float(image_ms), requested_by,
    )  # fmt: skip


@dataclass(frozen=True)
class RowUpdate:
    """Columns of an already committed row to set later (:data:`UPDATABLE`), and a note to append to its error.

    Attributes:
        row_id: the row.
        values: column -> value, columns from :data:`UPDATABLE`.
        note: appended to the row's ``error`` (``"; "``-separated), e.g. ``image not archived: disk full``.
    """

    row_id: int
    values: Mapping[str, object] = field(default_factory=dict)
    note: str | None = None

    def sql(self) -> tuple[str, list]:
        params = [v.value if isinstance(v, Enum) else v for v in self.values.values()]
        if self.note is not None:
            params += [self.note, self.note]
        return _update_sql(tuple(self.values), self.note is not None), params + [int(self.row_id)]


@functools.lru_cache(maxsize=64)
def _update_sql(columns: tuple[str, ...], note: bool) -> str:
    """The UPDATE text of a :class:`RowUpdate` of these columns (made once per kind: the loop sends the same few)."""
    bad = set(columns) - set(UPDATABLE)
    if bad:
        raise ValueError(f"RowUpdate: {sorted(bad)} cannot be updated (only {UPDATABLE})")
    sets = [f"{k} = ?" for k in columns]
    if note:
        sets.append("error = CASE WHEN error IS NULL OR error = '' THEN ? ELSE error || '; ' || ? END")
    return f"UPDATE parts SET {', '.join(sets)} WHERE id = ?"


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
        synchronous: what a commit waits for (:class:`Synchronous`).
        autocheckpoint: let SQLite checkpoint inside commits (every 1000 pages). The station turns it off and
            checkpoints from a :class:`Checkpointer` thread instead, so that no commit on the hot path pays for one.
        cache_kib: SQLite's page cache for this connection (None: SQLite's default, 2 MiB). A writer that only
            appends needs the tail of each B-tree: the station uses :data:`WRITER_CACHE_KIB`, so the cache does not
            grow with the database for hours after the start (measured: 2.4 MB of RSS over 10 000 parts).

    Raises:
        ConfigError: if ``path`` is not an SQLite database, belongs to another application, is corrupt, or was
            written by a newer edgead.

    Example:
        >>> with RecordStore(tmp / "records.db") as store:                  # doctest: +SKIP
        ...     row_id = store.add(PartRecord.now(part_id="A1", seq=1, verdict=Verdict.ACCEPT))
        ...     store.counts()[Verdict.ACCEPT]
        1
    """

    def __init__(self, path: str | PathLike, *, timeout_s: float = 5.0, synchronous: Synchronous = Synchronous.NORMAL,
                 autocheckpoint: bool = True, cache_kib: int | None = None):
        self.path = Path(path)
        self.synchronous = Synchronous(synchronous)
        self._autocheckpoint = autocheckpoint
        self._cache_kib = cache_kib
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        check_database_path(self.path)
        self._check_header()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"records database {str(self.path)!r}: cannot create its folder: {exc}",
                              hint="set storage.database to a writable place, e.g. /var/lib/edgead/records.sqlite") \
                from exc
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
        conn.execute(f"PRAGMA synchronous={self.synchronous.value.upper()}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        conn.execute(f"PRAGMA wal_autocheckpoint={1000 if self._autocheckpoint else 0}")
        if self._cache_kib is not None:
            conn.execute(f"PRAGMA cache_size={-int(self._cache_kib)}")  # negative: KiB, not pages
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
            _rollback(conn)
            raise

    # -- writing -------------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise EdgeadError(f"records database {str(self.path)!r} is closed", hint="open a new RecordStore")
        return self._conn

    def _write_failed(self, exc: sqlite3.Error) -> RecordError:
        hint = "check free disk space and that the state directory is writable"
        return RecordError(f"records database {str(self.path)!r}: write failed: {exc}", hint=hint)

    def commit(self, record: PartRecord, updates: Iterable[RowUpdate] = ()) -> int:
        """Insert ``record`` and apply ``updates`` to earlier rows, in one transaction; on return it is committed.

        Args:
            record: the part (its ``id`` is ignored).
            updates: pending changes of earlier rows (their answer, latencies, image path).

        Returns:
            The new row id.

        Raises:
            RecordError: if the write fails (disk full, read-only filesystem, I/O error); nothing was written.
        """
        return self.commit_row(record.to_row(), updates)

    def commit_row(self, row: tuple, updates: Iterable[RowUpdate] = ()) -> int:
        """:meth:`commit` of a row already made by :func:`part_row` (the station's loop: no record built first).

        Raises:
            RecordError: if the write fails; nothing was written.
        """
        statements = [u.sql() for u in updates]
        statements.append((_INSERT, row))
        return self._transaction(statements)[-1]

    def update(self, updates: Iterable[RowUpdate]) -> None:
        """Apply updates to committed rows in one transaction (when no part comes to carry them).

        Raises:
            RecordError: if the write fails; nothing was changed.
        """
        statements = [u.sql() for u in updates]
        if statements:
            self._transaction(statements)

    def _transaction(self, statements: list[tuple[str, object]]) -> list[int]:
        """Execute ``(sql, params)`` statements in one transaction (a single one: SQLite's implicit one).

        Returns:
            Each statement's ``lastrowid``.

        Raises:
            RecordError: if the write fails; nothing of it is stored then.
        """
        with self._lock:
            conn = self._connection()
            try:
                if len(statements) == 1:
                    return [conn.execute(*statements[0]).lastrowid]
                conn.execute("BEGIN IMMEDIATE")
                try:
                    ids = [conn.execute(sql, params).lastrowid for sql, params in statements]
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
                return ids
            except sqlite3.Error as exc:
                raise self._write_failed(exc) from exc

    def insert(self, sql: str, params: tuple | list) -> int:
        """Execute one INSERT in its own transaction (labels, tools; never the hot path's rows).

        Returns:
            The new row's id.

        Raises:
            RecordError: if the write fails.
        """
        return self._transaction([(sql, params)])[0]

    def read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """All rows of one SELECT (the label and shadow tables' readers)."""
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def checkpoint(self, mode: Checkpoint = Checkpoint.PASSIVE) -> tuple[int, int, int]:
        """Copy the WAL into the database file (fsynced); TRUNCATE also empties the WAL file.

        Returns:
            SQLite's ``(busy, wal_frames, checkpointed_frames)``.

        Raises:
            RecordError: if the checkpoint fails.
        """
        with self._lock:
            try:
                return tuple(self._connection().execute(f"PRAGMA wal_checkpoint({Checkpoint(mode).value})").fetchone())
            except sqlite3.Error as exc:
                raise self._write_failed(exc) from exc

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: it changes when another connection has committed since."""
        with self._lock:
            try:
                return int(self._connection().execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise self._write_failed(exc) from exc

    def restart_wal(self) -> None:
        """Start the WAL over from its beginning now, on this connection. After a checkpoint has copied the whole
        WAL into the database file, the next write starts it over, and SQLite fsyncs the new WAL header with that
        first frame (with ``synchronous=NORMAL`` too): written here, by the :class:`Checkpointer`, that fsync is
        not paid by the station's next commit. The write is ``PRAGMA application_id`` with its own value: one page,
        nothing changes.

        Raises:
            RecordError: if the write fails.
        """
        with self._lock:
            try:
                self._connection().execute(f"PRAGMA application_id={APPLICATION_ID}")
            except sqlite3.Error as exc:
                raise self._write_failed(exc) from exc

    def add(self, record: PartRecord) -> int:
        """Insert and commit one record; when this returns, the record is on disk.

        Args:
            record: the part (its ``id`` is ignored).

        Returns:
            The new row id.

        Raises:
            RecordError: if the write fails (disk full, read-only filesystem).
            ValueError: if ``record.verdict`` is not a :class:`Verdict`.
        """
        return self._transaction([(_INSERT, record.to_row())])[0]

    def add_many(self, records: Iterable[PartRecord]) -> list[int]:
        """Insert records in one transaction (all or none), e.g. a writer queue's backlog.

        Args:
            records: the parts, in order.

        Returns:
            Their row ids, in order.

        Raises:
            RecordError: if the write fails; nothing of the batch is stored then.
        """
        rows = [(_INSERT, r.to_row()) for r in records]
        return self._transaction(rows) if rows else []

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


class Checkpointer:
    """A thread with its own connection that checkpoints the WAL every ``interval_s``, and once more (TRUNCATE) on
    :meth:`close`: the writer's commits never pay for a checkpoint. When a checkpoint copied the whole WAL, this
    thread also starts the WAL over (:meth:`RecordStore.restart_wal`), so that the fsync of the new WAL header is
    not paid by the writer's next commit (the first part after a pause of the line). A failing checkpoint is
    logged, never raised (the writer's next commit reports a dead store).

    Args:
        path: the database (already opened by a :class:`RecordStore`, so it exists and is migrated).
        interval_s: seconds between checkpoints.
        synchronous: as the writer's.
    """

    def __init__(self, path: str | PathLike, interval_s: float, synchronous: Synchronous = Synchronous.NORMAL):
        self._store = RecordStore(path, synchronous=synchronous, autocheckpoint=False, cache_kib=WRITER_CACHE_KIB)
        self.interval_s = float(interval_s)
        self.checkpoints = 0
        self.restarts = 0  # WAL restarts done here
        self.failures = 0
        self._version: int | None = None  # PRAGMA data_version after this thread's restart write
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgead-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._checkpoint(Checkpoint.PASSIVE)

    def _checkpoint(self, mode: Checkpoint) -> None:
        try:
            passive = mode is Checkpoint.PASSIVE
            version = self._store.data_version()
            if passive and version == self._version:
                return  # nothing written since this thread's restart: its one page stays in the WAL, so the next
                # commit appends to the WAL instead of starting it over (copied, it would start over there)
            busy, frames, copied = self._store.checkpoint(mode)
            self.checkpoints += 1
            self._version = None
            if passive and not busy and frames > 0 and frames == copied:  # -1, -1: not in WAL mode
                self._store.restart_wal()  # all copied: start the WAL over here, with its header's fsync
                self.restarts += 1
                after = self._store.data_version()
                self._version = after if after == version else None  # another write came in between: copy it
        except EdgeadError as exc:
            self.failures += 1
            log.warning("records checkpoint (%s) failed: %s", mode.value, exc)

    def close(self) -> None:
        """Stop the thread, checkpoint everything and truncate the WAL, close the connection (idempotent)."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._checkpoint(Checkpoint.TRUNCATE)
        self._store.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


SETTLE_S = 2.0  # a row without its answer is taken as final after this long (its station stopped, or a tool wrote it)


def settled(records: list[PartRecord], now_ns: int | None = None) -> list[PartRecord]:
    """The leading records whose answer is on record, in order: what an outbox reader (MQTT north) may publish.

    The station commits a part's row before it answers, and writes what the answer was (``plc_answer``) and took
    (``signal_ms``, ``total_ms``) with the next part's commit, or between parts within ``runtime.trigger_poll_ms``.
    A row counts as settled when it has ``plc_answer``, when a later row exists (its updates came in the same
    transaction), or when it is older than :data:`SETTLE_S` (the answer failed, or the row was not written by a
    station); the first row that is not settled ends the list, so order is kept.

    Args:
        records: rows in id order, e.g. from :meth:`RecordStore.after`.
        now_ns: wall-clock now (default ``time.time_ns()``).
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    out = []
    for i, record in enumerate(records):
        later = i + 1 < len(records)
        if record.plc_answer is None and not later and now_ns - record.t_ns < SETTLE_S * 1e9:
            break
        out.append(record)
    return out


def check_database_path(path: Path) -> None:
    """Refuse a database path SQLite cannot open (longer than :data:`SQLITE_MAX_PATH` bytes with its ``-wal``
    suffix, or a name longer than the filesystem allows), before anything is created.

    Raises:
        ConfigError: naming the path and the limit.
    """
    absolute = os.path.abspath(path)
    if len(os.fsencode(absolute)) + len("-wal") > SQLITE_MAX_PATH:
        raise ConfigError(f"records database path is {len(os.fsencode(absolute))} bytes long; SQLite opens at most "
                          f"{SQLITE_MAX_PATH - 4} (with its -wal suffix): {absolute[:60]}...",
                          hint="set storage.database to a shorter path, e.g. /var/lib/edgead/records.sqlite")
    name_max = 255
    for part in Path(absolute).parts:
        if len(os.fsencode(part)) + len("-wal") > name_max:
            raise ConfigError(f"records database path: the name {part[:40]!r}... is longer than {name_max - 4} bytes",
                              hint="set storage.database to a shorter name")


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



def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open: on SQLITE_FULL or an I/O error SQLite has already rolled it back,
    and a second ROLLBACK would replace the real error by "no transaction is active"."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
