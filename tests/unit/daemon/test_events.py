"""The station's event writer: events on record from its own thread; a refused write is counted and retried, never
raised; the pure drift -> record mapping with literal values."""
from __future__ import annotations

import time

from edgead.daemon.drift import DriftEvent, DriftSignal
from edgead.daemon.events import EventWriter, drift_event
from edgead.observe.metrics import StationMetrics
from edgead.records import RecordStore
from edgead.records.events import EventKind, EventState, EventTable

T0 = 1_795_000_000_000_000_000


def test_a_drift_event_becomes_its_record():
    e = drift_event(DriftEvent(DriftSignal.CONTRAST, False, 0.05, 0.25, "drift cleared (contrast)", 50), "line3",
                    T0, {"recipe": "housing-a"})
    assert (e.t_ns, e.station, e.kind, e.state, e.metric, e.value, e.bound, e.window_parts, e.message, e.detail) == \
        (T0, "line3", EventKind.DRIFT, EventState.CLEARED, "contrast", 0.05, 0.25, 50, "drift cleared (contrast)",
         {"recipe": "housing-a"})


def _wait(predicate, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_events_are_written_in_order_and_a_refused_write_is_retried(tmp_path):
    db = tmp_path / "r.db"
    RecordStore(db).close()
    metrics = StationMetrics()
    event = drift_event(DriftEvent(DriftSignal.BRIGHTNESS, True, -0.3, 0.15, "drift alarm (brightness)", 20),
                        "line3", T0, {})
    with EventWriter(db, metrics=metrics, retry_s=0.05) as writer:
        assert writer.submit(event)
        assert _wait(lambda: writer.counts["recorded"] == 1)
        conn = writer.store._conn  # noqa: SLF001 -- a full disk for this connection: SQLITE_FULL, as on a real one
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        for i in range(3):
            assert writer.submit(drift_event(DriftEvent(DriftSignal.SCORE, i % 2 == 0, 0.95, 0.9, "x" * 20_000, 20),
                                             "line3", T0 + i + 1, {}))
        assert _wait(lambda: writer.counts["write_failed"] >= 2)  # tried, refused, tried again
        conn.execute("PRAGMA max_page_count=1073741823")  # space again: the waiting events go in, in order
        assert _wait(lambda: writer.counts["recorded"] == 4)
    assert writer.counts["dropped"] == 0
    assert 'edgead_events_total{outcome="recorded"} 4' in metrics.render()
    with RecordStore(db) as store:
        events = EventTable(store).after(0)
    assert [(e.metric, e.state.value, e.t_ns - T0) for e in events] == \
        [("brightness", "raised", 0), ("score", "raised", 1), ("score", "cleared", 2), ("score", "raised", 3)]


def test_events_the_store_never_takes_are_dropped_and_counted_at_stop(tmp_path):
    db = tmp_path / "r.db"
    RecordStore(db).close()
    writer = EventWriter(db, retry_s=60, depth=2)
    conn = writer.store._conn  # noqa: SLF001
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
    for i in range(3):
        writer.submit(drift_event(DriftEvent(DriftSignal.SCORE, True, 0.95, 0.9, "x" * 20_000, 20), "s", T0 + i, {}))
    writer.close()  # one last try at stop, then what is left is logged and counted
    assert writer.counts["recorded"] == 0 and writer.counts["dropped"] == 3
