"""RecordStore: round trip, queries, counts, durability under kill -9, refusal of foreign/corrupt files, the
per-part commit with pending updates, migrations, checkpoints, full disk, path limits."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edgead.errors import ConfigError, ExitStatus, RecordError
from edgead.records import SCHEMA_VERSION, Checkpointer, PartRecord, RecordStore, RowUpdate, Synchronous
from edgead.records.store import (APP_NAME, APPLICATION_ID, COLUMNS, MIGRATIONS, SETTLE_S, check_database_path,
                                   WRITER_CACHE_KIB, settled)
from edgead.verdict import Verdict

REPO = Path(__file__).resolve().parents[3]
T0 = 1_795_000_000_000_000_000  # 2026-11-17, wall-clock ns


def make(i: int, verdict: Verdict = Verdict.ACCEPT, **kw) -> PartRecord:
    fields = dict(
        t_ns=T0 + i * 1_000_000_000, part_id=f"P{i}", seq=i, verdict=verdict, score=0.1 * (i % 10),
        raw_score=1.5 + i, capture_ms=3.0, align_ms=5.5, infer_ms=8.25, decide_ms=0.1, signal_ms=1.0,
        total_ms=17.85, model_hash="ab" * 32, align_quality=0.97, roi_scores={"left": 0.2, "right": 0.7},
    )
    fields.update(kw)
    return PartRecord(**fields)


def test_round_trip_and_schema(tmp_path):
    db = tmp_path / "sub" / "records.db"
    rec = make(1, t_ns=T0 + 1_000_000_000 + 123_456_789, image_path="/var/lib/edgead/rejects/x.png", error=None)
    with RecordStore(db) as store:
        row_id = store.add(rec)
        got = store.get(row_id)
    assert got.id == row_id
    assert got == PartRecord(**{**rec.__dict__, "id": row_id})
    assert got.t_utc == rec.t_utc == "2026-11-18T11:06:41.123456Z"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
    assert conn.execute("SELECT verdict, t_utc FROM parts").fetchone() == ("accept", rec.t_utc)
    conn.close()


def test_nullable_fields_for_a_fault(tmp_path):
    rec = PartRecord(t_ns=T0, part_id="F1", seq=7, verdict=Verdict.FAULT, error="camera timeout after 200 ms")
    with RecordStore(tmp_path / "r.db") as store:
        got = store.get(store.add(rec))
    assert got.score is None and got.infer_ms is None and got.image_path is None
    assert got.error == "camera timeout after 200 ms" and got.verdict is Verdict.FAULT


def test_query_filters_counts_and_reopen(tmp_path):
    db = tmp_path / "r.db"
    verdicts = [Verdict.ACCEPT, Verdict.REJECT, Verdict.ACCEPT, Verdict.NO_READ, Verdict.ACCEPT]
    with RecordStore(db) as store:
        ids = store.add_many(make(i, v) for i, v in enumerate(verdicts))
    assert ids == sorted(ids) and len(set(ids)) == 5
    with RecordStore(db) as store:  # reopening an existing database migrates nothing and keeps the rows
        assert [r.seq for r in store.query()] == [0, 1, 2, 3, 4]
        assert [r.seq for r in store.query(verdict=Verdict.ACCEPT)] == [0, 2, 4]
        assert [r.seq for r in store.query(verdict="no-read")] == [3]
        since = datetime.fromtimestamp((T0 + 1_000_000_000) / 1e9, timezone.utc)
        assert [r.seq for r in store.query(since=since, until=T0 + 3_000_000_000)] == [1, 2]
        assert [r.seq for r in store.query(limit=2)] == [0, 1]
        assert store.counts() == {Verdict.ACCEPT: 3, Verdict.REJECT: 1, Verdict.NO_READ: 1, Verdict.FAULT: 0}
        assert store.counts(since=T0 + 2_000_000_000)[Verdict.ACCEPT] == 2
        assert store.integrity_check() == []


def test_query_streams_more_rows_than_one_chunk(tmp_path):
    with RecordStore(tmp_path / "r.db") as store:
        store.add_many(make(i) for i in range(1300))
        assert sum(1 for _ in store.query()) == 1300


def test_bad_verdict_is_refused_before_writing(tmp_path):
    with RecordStore(tmp_path / "r.db") as store:
        with pytest.raises(ValueError):
            store.add(make(1, verdict="maybe"))
        with pytest.raises(ValueError):
            store.add_many([make(2), make(3, verdict="maybe")])
        assert sum(store.counts().values()) == 0


def test_not_a_database_names_the_file(tmp_path):
    bad = tmp_path / "records.db"
    bad.write_bytes(b"this is a text file, not sqlite\n" * 10)
    with pytest.raises(ConfigError, match="records.db.*not an SQLite database"):
        RecordStore(bad)


def test_corrupt_database_names_the_file(tmp_path):
    db = tmp_path / "records.db"
    with RecordStore(db) as store:
        store.add_many(make(i) for i in range(50))
    raw = bytearray(db.read_bytes())
    raw[100:4096] = b"\xff" * (4096 - 100)  # keep the magic, destroy the rest of page 1 (the schema)
    db.write_bytes(bytes(raw))
    with pytest.raises(ConfigError, match="records.db.*(corrupt|another application)"):
        RecordStore(db)


def test_foreign_database_is_refused_and_untouched(tmp_path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER, amount REAL)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(ConfigError, match="other.db.*another application.*invoices"):
        RecordStore(db)
    assert db.read_bytes() == before


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "r.db"
    RecordStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="schema version"):
        RecordStore(db)


WRITER = textwrap.dedent(
    """
    import sys, time
    from edgead.records import PartRecord, RecordStore
    from edgead.verdict import Verdict
    with RecordStore(sys.argv[1]) as store:
        seq = 0
        while True:
            seq += 1
            rec = PartRecord.now(part_id=f"K{seq}", seq=seq, verdict=Verdict.REJECT, score=0.9, raw_score=3.0,
                                 total_ms=12.0, roi_scores={"a": 0.9}, model_hash="x" * 64)
            if seq % 5 == 0:
                ids = store.add_many([rec, rec])
            else:
                ids = [store.add(rec)]
            for row_id in ids:
                sys.stdout.write(f"{row_id}\\n")
            sys.stdout.flush()
    """
)


def test_kill_9_loses_no_committed_record(tmp_path):
    db = tmp_path / "records.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, env=env)
    printed: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(printed) < 300 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(int(line))
        assert len(printed) >= 300, f"writer produced only {len(printed)} ids (rc={proc.poll()})"
        os.kill(proc.pid, signal.SIGKILL)  # mid-run: the writer is inside its loop, committing
    finally:
        if proc.poll() is None:
            proc.kill()
        tail = proc.stdout.read()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    printed += [int(x) for x in tail.decode().split("\n")[:-1]]  # complete lines only
    assert (db.parent / "records.db-wal").exists()  # killed without a clean close
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {r[0] for r in conn.execute("SELECT id FROM parts")}
    finally:
        conn.close()
    missing = set(printed) - stored
    assert not missing, f"{len(missing)} committed ids lost, e.g. {sorted(missing)[:5]}"
    with RecordStore(db) as store:  # and edgead reopens it
        assert store.integrity_check() == []
        assert sum(store.counts().values()) == len(stored)


def test_commit_applies_the_pending_updates_in_the_same_transaction(tmp_path):
    """The hot loop writes one transaction per part: the new row and the answer/latency/image of earlier rows."""
    with RecordStore(tmp_path / "r.db") as store:
        first = store.commit(make(1, signal_ms=None, total_ms=None, error="alignment: low quality"))
        second = store.commit(make(2), [RowUpdate(first, {"record_ms": 0.2, "signal_ms": 1.5, "total_ms": 20.0,
                                                          "plc_answer": Verdict.REJECT}, note="image skipped")])
        got = store.get(first)
        assert (got.record_ms, got.signal_ms, got.total_ms, got.plc_answer) == (0.2, 1.5, 20.0, "reject")
        assert got.error == "alignment: low quality; image skipped"
        store.update([RowUpdate(second, {"image_path": "/x.png"}, note="first note")])
        assert store.get(second).image_path == "/x.png" and store.get(second).error == "first note"
        with pytest.raises(ValueError, match="cannot be updated"):
            store.commit(make(3), [RowUpdate(first, {"verdict": "accept"})])  # a verdict is never rewritten
        assert store.get(first).verdict is Verdict.ACCEPT and sum(store.counts().values()) == 2


def test_a_full_disk_is_a_record_error_and_nothing_half_written(tmp_path):
    """SQLITE_FULL (here from PRAGMA max_page_count, the same error a full disk gives) raises RecordError (exit
    code 8); the pending updates of the failed transaction are not applied."""
    with RecordStore(tmp_path / "r.db") as store:
        first = store.commit(make(1))
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]  # noqa: SLF001
        store._conn.execute(f"PRAGMA max_page_count={pages}")  # noqa: SLF001
        with pytest.raises(RecordError, match="write failed: database or disk is full") as err:
            for i in range(2, 200):
                store.commit(make(i, error="x" * 500), [RowUpdate(first, {"signal_ms": 9.0})])
        assert err.value.exit_status == ExitStatus.RECORDS
        store._conn.execute("PRAGMA max_page_count=1073741823")  # noqa: SLF001
        assert store.integrity_check() == []


def test_version_1_database_is_migrated_and_keeps_its_rows(tmp_path):
    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("app", APP_NAME), ("schema_version", "1")])
    v1_columns = [c for c in COLUMNS if c not in ("record_ms", "plc_answer", "recipe", "lot_id", "queue_ms", "image_ms",
                                                "requested_by")]
    conn.execute(f"INSERT INTO parts ({', '.join(v1_columns)}) VALUES ({', '.join('?' * len(v1_columns))})",
                 make(7).to_row()[:len(v1_columns)])
    conn.close()
    with RecordStore(db) as store:
        old = next(store.query())
        assert old.part_id == "P7" and old.record_ms is None and old.plc_answer is None and old.queue_ms is None
        assert old.recipe is None and old.lot_id is None and old.requested_by is None  # unknown, not ''
        store.commit(make(8, record_ms=0.3, plc_answer=Verdict.ACCEPT, recipe="housing-b", lot_id="L-42"))
        assert [r.plc_answer for r in store.query()] == [None, "accept"]
        assert [(r.recipe, r.lot_id) for r in store.query()] == [(None, None), ("housing-b", "L-42")]
    conn = sqlite3.connect(db)
    assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION) == "7"
    conn.close()


@pytest.mark.parametrize("mode, code", [(Synchronous.NORMAL, 1), (Synchronous.FULL, 2)])
def test_synchronous_mode_and_no_checkpoint_in_the_writers_commits(tmp_path, mode, code):
    with RecordStore(tmp_path / "r.db", synchronous=mode, autocheckpoint=False) as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == code  # noqa: SLF001
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # noqa: SLF001


def test_checkpointer_truncates_the_wal_on_close(tmp_path):
    db = tmp_path / "r.db"
    with RecordStore(db, autocheckpoint=False) as store:
        checkpointer = Checkpointer(db, interval_s=0.05)
        for i in range(200):
            store.commit(make(i))
        deadline = time.monotonic() + 30
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert checkpointer.checkpoints >= 1 and checkpointer.failures == 0
        checkpointer.close()
        assert (tmp_path / "r.db-wal").stat().st_size == 0  # everything is in the database file
        assert sum(store.counts().values()) == 200


def test_a_path_sqlite_cannot_open_is_refused_before_anything_is_created(tmp_path):
    deep = tmp_path.joinpath(*["d" * 60] * 8) / "records.sqlite"
    with pytest.raises(ConfigError, match="SQLite opens at most 508"):
        RecordStore(deep)
    assert not (tmp_path / ("d" * 60)).exists()
    with pytest.raises(ConfigError, match="longer than 251 bytes"):
        check_database_path(tmp_path / ("n" * 300))


def test_an_outbox_reader_takes_only_rows_whose_answer_is_on_record():
    """The station writes a part's answer with the next commit: the newest row without it waits (SETTLE_S)."""
    now = T0 + 100 * 1_000_000_000
    fresh = [make(i, t_ns=now - 10_000_000, id=i) for i in (1, 2, 3)]
    assert [r.id for r in settled(fresh, now)] == [1, 2]  # 3 has no answer yet and nothing after it
    answered = fresh[:2] + [PartRecord(**{**fresh[2].__dict__, "plc_answer": Verdict.REJECT})]
    assert [r.id for r in settled(answered, now)] == [1, 2, 3]
    assert [r.id for r in settled(fresh, now + int(SETTLE_S * 1e9))] == [1, 2, 3]  # an answer that never came
    assert settled([], now) == []


def test_the_writers_page_cache_does_not_grow_with_the_database(tmp_path):
    """SQLite's default 2 MiB page cache filled up over hours of parts (2.4 MB of RSS over 10 000 parts); the
    station's connections keep a small one."""
    with RecordStore(tmp_path / "r.db", autocheckpoint=False, cache_kib=WRITER_CACHE_KIB) as store:
        assert store._conn.execute("PRAGMA cache_size").fetchone()[0] == -WRITER_CACHE_KIB  # noqa: SLF001
        store.add_many(make(i) for i in range(3000))
        assert store._conn.execute("PRAGMA cache_size").fetchone()[0] == -WRITER_CACHE_KIB  # noqa: SLF001


def test_the_roi_scores_column_is_what_json_writes():
    import json
    import math

    from edgead.records.store import scores_json

    for scores in ({"part": 0.3}, {"part": 1}, {'a "quoted" \u00e9 key': 0.25}, {"part": math.nan},
                   {"left": 0.1, "right": 0.9}, {}, {3: 0.5}):
        assert scores_json(scores) == json.dumps({str(k): float(v) for k, v in scores.items()})


def test_utc_iso_keeps_each_second_apart():
    from datetime import datetime, timezone

    from edgead.records.store import utc_iso

    base = int(datetime(2026, 11, 22, 7, 59, 59, tzinfo=timezone.utc).timestamp()) * 1_000_000_000
    stamps = [base + 999_999_000, base + 1_000_000_000, base + 1_000_001_000, base - 1000, base + 999_999_000]
    assert [utc_iso(t) for t in stamps] == ["2026-11-22T07:59:59.999999Z", "2026-11-22T08:00:00.000000Z",
                                            "2026-11-22T08:00:00.000001Z", "2026-11-22T07:59:58.999999Z",
                                            "2026-11-22T07:59:59.999999Z"]


def _wal_checkpoint_seq(db) -> int:
    """The WAL header's checkpoint sequence number: it grows by one each time the WAL starts over."""
    return int.from_bytes((db.parent / (db.name + "-wal")).read_bytes()[12:16], "big")


def test_the_checkpointer_starts_a_wal_it_copied_whole_over_itself(tmp_path):
    """SQLite fsyncs a restarted WAL's header with its first frame: the checkpointer's thread restarts it, so the
    station's next commit (the first part after a pause) does not pay that fsync; once, not at every interval."""
    db = tmp_path / "r.db"
    with RecordStore(db, autocheckpoint=False) as store:
        for i in range(20):
            store.commit(make(i))
        seq = _wal_checkpoint_seq(db)
        with Checkpointer(db, interval_s=0.05) as checkpointer:
            deadline = time.monotonic() + 30
            while checkpointer.restarts == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert checkpointer.restarts == 1 and checkpointer.failures == 0
            assert _wal_checkpoint_seq(db) == seq + 1  # started over by the checkpointer, not by a commit
            time.sleep(0.3)  # six intervals with nothing written
            assert checkpointer.restarts == 1  # its own restart write alone does not make another
            assert _wal_checkpoint_seq(db) == seq + 1  # nor is its page copied: a commit now appends to the WAL
            store.commit(make(20))
            assert _wal_checkpoint_seq(db) == seq + 1
            while checkpointer.restarts == 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert checkpointer.restarts == 2 and _wal_checkpoint_seq(db) == seq + 2
        assert sum(store.counts().values()) == 21
