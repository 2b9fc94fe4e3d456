"""The ``events`` table (schema 6): round trip with literal values, the outbox reads, and a version-5 database
migrated with its parts kept."""
from __future__ import annotations

import sqlite3

import pytest

from edgead.errors import RecordError
from edgead.records import RecordStore
from edgead.records.events import EventKind, EventState, EventTable, StationEvent
from edgead.verdict import Verdict
from old_stores import old_store  # tests/helpers

T0 = 1_795_000_000_000_000_000  # 2026-11-18T11:06:40Z


def raised(i: int = 0, **kw) -> StationEvent:
    fields = dict(t_ns=T0 + i, station="line3", kind=EventKind.DRIFT, state=EventState.RAISED, metric="brightness",
                  value=-0.25, bound=0.15, window_parts=20, message="drift alarm (brightness)",
                  detail={"recipe": "", "model_hash": "ab"})
    fields.update(kw)
    return StationEvent(**fields)


def test_events_round_trip_and_outbox_reads(tmp_path):
    with RecordStore(tmp_path / "r.db") as store:
        table = EventTable(store)
        assert table.last_id() == 0 and table.after(0) == [] and table.get(1) is None
        ids = table.add([raised(), raised(5, state=EventState.CLEARED, value=float("nan"), window_parts=0)])
        assert ids == [1, 2] and table.last_id() == 2
        first, second = table.after(0)
        assert first == raised(id=1) and first.t_utc == "2026-11-18T11:06:40.000000Z"
        assert second.state is EventState.CLEARED and second.value is None and second.window_parts == 0
        assert table.after(1) == [second] and table.get(2) == second
        assert [e.id for e in table.query(since=T0 + 1)] == [2] and table.query(limit=1) == [first]
        assert store.read("SELECT t_utc, detail FROM events WHERE id = 1")[0] == \
            ("2026-11-18T11:06:40.000000Z", '{"model_hash": "ab", "recipe": ""}')


def test_an_unknown_state_is_refused_and_nothing_written(tmp_path):
    with RecordStore(tmp_path / "r.db") as store:
        table = EventTable(store)
        with pytest.raises(ValueError):
            table.add([raised(), raised(state="flapping")])
        with pytest.raises(RecordError):  # the table's CHECK, should a bad row get past the enum
            store.insert("INSERT INTO events (t_ns, t_utc, station, kind, state, metric, message, detail) "
                         "VALUES (1, 'x', 's', 'drift', 'flapping', 'score', 'm', '{}')", ())
        assert table.last_id() == 0


def test_a_version_5_database_gains_the_events_table_and_keeps_its_parts(tmp_path):
    db = tmp_path / "v5.db"
    conn = old_store(db, 5)
    conn.execute("INSERT INTO parts (t_utc, t_ns, part_id, seq, verdict, model_hash, roi_scores) "
                 "VALUES ('2026-11-18T11:06:40.000000Z', ?, 'P1', 1, 'accept', 'ab', '{}')", (T0,))
    conn.close()
    with RecordStore(db) as store:
        assert [(r.part_id, r.verdict) for r in store.query()] == [("P1", Verdict.ACCEPT)]
        assert EventTable(store).add([raised()]) == [1]
    conn = sqlite3.connect(db)
    assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == "7"  # and on to the audit table (schema 7)
    conn.close()


def test_records_events_lists_them_as_lines_and_as_json(tmp_path, capsys):
    from edgead.cli import main

    db = tmp_path / "r.db"
    with RecordStore(db) as store:
        EventTable(store).add([raised(), raised(1, state=EventState.CLEARED, value=None, window_parts=0,
                                                message="drift cleared (brightness): the station stopped")])
    assert main(["records", str(db), "--events"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-11-18T11:06:40.000000Z drift raised  brightness value -0.25 bound 0.15: drift alarm (brightness)",
        "2026-11-18T11:06:40.000000Z drift cleared brightness value - bound 0.15: drift cleared (brightness): the "
        "station stopped"]
    assert main(["records", str(db), "--events", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith('{"schema":"edgead.station-event/1","message_id":'
                                                   '"line3:event:2:1795000000000000001"')
    assert main(["records", str(db), "--events", "--until", "2026-11-18T11:06:40"]) == 0
    assert capsys.readouterr().err == "no events on record\n"
