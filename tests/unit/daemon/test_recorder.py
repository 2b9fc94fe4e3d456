"""The loop's record keeping: images off the hot path, the stop and degrade policies of a store that refuses writes."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgead.daemon.config import RecordFailure
from edgead.daemon.recorder import ImageWriter, Recorder
from edgead.errors import RecordError
from edgead.records import ImageArchive, PartRecord, RecordStore, RowUpdate
from edgead.verdict import Verdict


def rec(i: int, verdict: Verdict = Verdict.REJECT) -> PartRecord:
    return PartRecord(t_ns=1_795_000_000_000_000_000 + i, part_id=str(i), seq=i, verdict=verdict, model_hash="h")


def fill_disk(store: RecordStore) -> None:
    """SQLITE_FULL from now on (what a full disk gives), through PRAGMA max_page_count."""
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]  # noqa: SLF001
    store._conn.execute(f"PRAGMA max_page_count={pages}")  # noqa: SLF001


def free_disk(store: RecordStore) -> None:
    store._conn.execute("PRAGMA max_page_count=1073741823")  # noqa: SLF001


def commit_until_full(recorder: Recorder, start: int) -> int:
    """Commit records until the store refuses one; returns its index."""
    for i in range(start, start + 500):
        try:
            recorder.commit(rec(i))
        except RecordError:
            return i
    raise AssertionError("the store never filled up")


class SlowArchive(ImageArchive):
    """An archive whose saves wait for a gate (a slow disk), to fill the image queue."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.gate = threading.Event()

    def save(self, *a, **kw):
        self.gate.wait(30)
        return super().save(*a, **kw)


def test_images_go_through_the_writer_and_a_full_queue_skips_never_blocks(tmp_path):
    archive = SlowArchive(tmp_path / "img", quota_mb=10)
    with RecordStore(tmp_path / "r.db") as store:
        recorder = Recorder(store, ImageWriter(archive, depth=1), RecordFailure.STOP, 8)
        image = np.zeros((16, 16, 3), np.uint8)
        ids = []
        for i in range(4):  # the first is taken by the writer, the second waits in the queue, the rest are skipped
            ids.append(recorder.commit(rec(i)))
            recorder.archive(ids[-1], rec(i), image, None)
            time.sleep(0.05)
        assert not archive.gate.is_set() and len(ids) == 4  # got here with the disk still "slow": nothing waited
        archive.gate.set()
        recorder.close()
        rows = {r.id: r for r in store.query()}
    assert rows[ids[0]].image_path and rows[ids[1]].image_path
    assert [rows[i].error for i in ids[2:]] == ["image skipped: archive queue full"] * 2
    assert recorder.images.skipped == 2 and recorder.images.saved == 2


def test_an_image_that_cannot_be_written_is_noted_in_its_row(tmp_path):
    with RecordStore(tmp_path / "r.db") as store:
        recorder = Recorder(store, ImageWriter(ImageArchive(tmp_path / "img", quota_mb=10), depth=4),
                            RecordFailure.STOP, 8)
        row = recorder.commit(rec(1))
        recorder.archive(row, rec(1), np.zeros((4, 4), np.float32), None)  # not uint8: the archive refuses it
        recorder.close()
        got = store.get(row)
    assert got.image_path is None and got.error.startswith("image not archived: archive: expected a uint8")


def test_stop_policy_raises_after_logging_the_record(tmp_path, caplog):
    with RecordStore(tmp_path / "r.db") as store:
        recorder = Recorder(store, None, RecordFailure.STOP, 8)
        recorder.later(RowUpdate(recorder.commit(rec(0)), {"signal_ms": 1.0}))
        fill_disk(store)
        i = commit_until_full(recorder, 1)
        assert recorder.degraded
        with pytest.raises(RecordError, match="disk is full"):
            recorder.keep(rec(i), recorder.failure)
    assert f'"part_id": "{i}"' in caplog.text and "record not committed" in caplog.text


def test_degrade_policy_keeps_records_and_writes_them_first_when_the_store_recovers(tmp_path):
    with RecordStore(tmp_path / "r.db") as store:
        recorder = Recorder(store, None, RecordFailure.DEGRADE, backlog=3)
        fill_disk(store)
        first = commit_until_full(recorder, 0)
        recorder.keep(rec(first), recorder.failure)
        for i in (first + 1, first + 2):
            with pytest.raises(RecordError):
                recorder.commit(rec(i))
            recorder.keep(rec(i), recorder.failure)
        recorder.amend_kept(plc_answer=Verdict.REJECT, signal_ms=0.5)
        assert recorder.backlog == 3
        with pytest.raises(RecordError, match="3 records kept in memory"):  # the backlog is full: the store is dead
            with pytest.raises(RecordError):
                recorder.commit(rec(first + 3))
            recorder.keep(rec(first + 3), recorder.failure)
        free_disk(store)
        recorder.commit(rec(first + 4))
        assert not recorder.degraded and recorder.backlog == 0
        parts = [r.part_id for r in store.query()]
        last_kept = store.get(max(r.id for r in store.query() if r.part_id == str(first + 2)))
    assert parts[-4:] == [str(first), str(first + 1), str(first + 2), str(first + 4)]  # kept ones first, in order
    assert last_kept.plc_answer == "reject" and last_kept.signal_ms == 0.5


def test_the_writer_thread_runs_below_the_loop_and_reports_its_time(tmp_path):
    import os

    archive = SlowArchive(tmp_path / "img", quota_mb=10)
    with RecordStore(tmp_path / "r.db") as store:
        writer = ImageWriter(archive, depth=2, nice=5)
        recorder = Recorder(store, writer, RecordFailure.STOP, 8)
        row = recorder.commit(rec(1))
        recorder.archive(row, rec(1), np.zeros((8, 8, 3), np.uint8), None)
        deadline = time.monotonic() + 10
        while writer.waiting and time.monotonic() < deadline:  # taken: the thread lowered its priority first
            time.sleep(0.01)
        base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert os.getpriority(os.PRIO_PROCESS, writer._thread.native_id) == min(19, base + 5)  # noqa: SLF001
        archive.gate.set()
        recorder.close()
        got = store.get(row)
    assert got.image_path and got.image_ms is not None and got.image_ms >= 0
