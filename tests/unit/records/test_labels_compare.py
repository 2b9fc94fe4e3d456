"""Labels beside the records (the verdict as sent is never rewritten) and the shadow comparison."""
from __future__ import annotations

import pytest

from edgead.errors import DataError
from edgead.records import PartRecord, RecordStore
from edgead.records.compare import compare
from edgead.records.labels import Label, ShadowRow, add_label, find_part, latest_labels
from edgead.verdict import Verdict

A, R, F = Verdict.ACCEPT, Verdict.REJECT, Verdict.FAULT


def _store(tmp_path, verdicts, shadow):
    store = RecordStore(tmp_path / "r.sqlite")
    ids = [store.add(PartRecord(t_ns=1_000 + i, part_id=f"P{i % 3}", seq=i, verdict=v, score=0.1, raw_score=1.0,
                                model_hash="live"))
           for i, v in enumerate(verdicts)]
    updates = [ShadowRow(ids[i], "cand", v, 0.2, 2.0, 3.0) for i, v in shadow.items()]
    store.update(updates)
    return store, ids


def test_labels_are_their_own_rows_and_the_newest_wins(tmp_path):
    store, ids = _store(tmp_path, [A, R, R, A], {})
    with store:
        assert find_part(store, "P1").id == ids[1]
        assert find_part(store, "P0").id == ids[3]  # part ids repeat: the newest row
        assert find_part(store, "P0", row=ids[0]).id == ids[0]
        add_label(store, ids[1], "good", who="anna", note="dust", t_ns=5)
        add_label(store, ids[1], Label.DEFECT, who="ben", t_ns=6)
        latest = latest_labels(store)
        assert latest[ids[1]].label is Label.DEFECT and latest[ids[1]].who == "ben"
        assert store.get(ids[1]).verdict is R  # never rewritten
        assert len(store.read("SELECT * FROM labels")) == 2
        with pytest.raises(DataError, match="good, defect"):
            add_label(store, ids[1], "maybe", who="anna")
        with pytest.raises(DataError, match="who"):
            add_label(store, ids[1], "good", who=" ")
        with pytest.raises(DataError, match="no part"):
            add_label(store, 999, "good", who="anna")
        with pytest.raises(DataError, match="no part with id"):
            find_part(store, "P9")


def test_compare_counts_new_accepts_new_rejects_and_who_was_right(tmp_path):
    # live:    A  R  R  A  F  A
    # shadow:  A  A  R  R  A  -   (part 4 faulted: not compared; part 5 not scored)
    store, ids = _store(tmp_path, [A, R, R, A, F, A], {0: A, 1: A, 2: R, 3: R, 4: A})
    with store:
        add_label(store, ids[1], "defect", who="anna")  # the shadow's new accept is an escape
        add_label(store, ids[3], "good", who="anna")  # the shadow's new reject is a false reject
        add_label(store, ids[2], "defect", who="anna")
        c = compare(store)
    assert (c.parts, c.shadowed, c.skipped) == (5, 4, 1)
    assert (c.agree, c.new_accepts, c.new_rejects) == (2, 1, 1)
    assert (c.labelled, c.live_correct, c.shadow_correct) == (3, 3, 1)
    assert (c.new_accepts_labelled_defect, c.new_rejects_labelled_good) == (1, 1)
    assert c.shadow_models == ["cand"] and c.agreement == 0.5
    assert [r["row"] for r in c.changed] == [ids[1], ids[3]]
    text = "\n".join(c.lines())
    assert "new accepts 1, new rejects 1" in text and "new accepts labelled defect 1" in text
