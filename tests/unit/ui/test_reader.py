"""The page's read-only view of the record store: filters (time, verdict, score, recipe), summary, no writes."""
from __future__ import annotations

import sqlite3

import pytest

from edgead.errors import ConfigError, DataError
from edgead.records import PartRecord, RecordStore, RowUpdate
from edgead.ui.app import filters_from_query
from edgead.ui.reader import Filters, RecordReader
from edgead.verdict import Verdict

S = 1_000_000_000


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.sqlite"
    with RecordStore(path) as store:
        for i, (v, score) in enumerate([(Verdict.ACCEPT, 0.1), (Verdict.REJECT, 0.6), (Verdict.REJECT, 0.9),
                                        (Verdict.FAULT, None), (Verdict.ACCEPT, 0.3)]):
            rid = store.add(PartRecord(t_ns=(1000 + i) * S, part_id=f"P{i}", seq=i, verdict=v, score=score,
                                       total_ms=10.0 + i, model_hash="m" * 64))
            store.update([RowUpdate(rid, {"image_path": str(tmp_path / f"{i}.png")})])
    return path


def test_gallery_filters_by_verdict_time_and_score(db):
    r = RecordReader(db)
    ids = lambda f: [p["id"] for p in r.gallery(f)]  # noqa: E731
    assert ids(Filters()) == [4, 3, 2]  # the default: everything not accepted, newest first
    assert ids(Filters(verdicts=("accept",))) == [5, 1]
    assert ids(Filters(verdicts=("accept", "reject"), score_min=0.3, score_max=0.6)) == [5, 2]
    assert ids(Filters(verdicts=("accept", "reject"), since_ns=1001 * S, until_ns=1004 * S)) == [3, 2]
    assert ids(Filters(verdicts=("reject",), before_id=3)) == [2]
    assert ids(Filters(verdicts=())) == []
    assert ids(Filters(recipe="bracket-a")) == []  # a store without recipes has no part of one
    part = r.part(2)
    assert part["has_image"] and part["label"] is None and part["t_utc"].endswith("Z") and len(part["model_hash"]) == 12


def test_gallery_of_the_parts_the_shadow_judged_otherwise(db):
    from edgead.records.labels import ShadowRow

    with RecordStore(db) as store:  # shadow: part 1 accept (agrees), 2 accept (new accept), 5 reject (new reject)
        store.update([ShadowRow(1, "c" * 64, Verdict.ACCEPT, 0.1, 1.0, 2.0),
                      ShadowRow(2, "c" * 64, Verdict.ACCEPT, 0.2, 1.0, 2.0),
                      ShadowRow(5, "c" * 64, Verdict.REJECT, 0.7, 1.0, 2.0)])
    r = RecordReader(db)
    f = Filters(verdicts=("accept", "reject", "fault"), shadow_disagrees=True)
    assert [(p["id"], p["verdict"], p["shadow_verdict"]) for p in r.gallery(f)] == [(5, "accept", "reject"),
                                                                                 (2, "reject", "accept")]
    assert r.compare().new_accepts == 1 and r.compare().new_rejects == 1
    assert filters_from_query({"shadow": "disagrees"}).shadow_disagrees


def test_recipe_column_when_the_store_has_one(db):
    conn = sqlite3.connect(db)
    if "recipe" not in {r[1] for r in conn.execute("PRAGMA table_info(parts)")}:  # schema 4 has it (issue 19)
        conn.execute("ALTER TABLE parts ADD COLUMN recipe TEXT")
    conn.execute("UPDATE parts SET recipe = CASE WHEN id % 2 THEN 'a' ELSE 'b' END")
    conn.commit()
    conn.close()
    r = RecordReader(db)
    assert [p["id"] for p in r.gallery(Filters(verdicts=("accept", "reject", "fault"), recipe="b"))] == [4, 2]
    assert r.summary()["by_recipe"] == {"a": {"accept": 2, "reject": 1}, "b": {"reject": 1, "fault": 1}}
    assert sorted(r.recipes()) == ["a", "b"]


def test_summary_and_the_connection_cannot_write(db):
    r = RecordReader(db)
    s = r.summary()
    assert s["counts"] == {"accept": 2, "reject": 2, "no-read": 0, "fault": 1}
    assert s["latency_ms"]["parts"] == 5 and s["latency_ms"]["p50"] == 12.0 and s["latency_ms"]["max"] == 14.0
    assert r.last_id() == 5 and [p["id"] for p in r.recent(2)] == [5, 4] and r.recent(10, after_id=4)[0]["id"] == 5
    with r.connect() as conn, pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM parts")
    with pytest.raises(DataError, match="does not exist"):
        RecordReader(db.parent / "none.sqlite").last_id()
    assert not (db.parent / "none.sqlite").exists()


def test_query_string_filters_are_checked():
    f = filters_from_query({"verdict": "reject,fault", "since": "2026-11-22T08:00", "score_min": "0.5",
                            "limit": "500"})
    assert f.verdicts == ("reject", "fault") and f.score_min == 0.5 and f.limit == 200 and f.since_ns > 0
    with pytest.raises(DataError, match="verdict"):
        filters_from_query({"verdict": "maybe"})
    with pytest.raises(DataError, match="score_max"):
        filters_from_query({"score_max": "high"})
    with pytest.raises(ConfigError, match="since"):
        filters_from_query({"since": "yesterday"})
