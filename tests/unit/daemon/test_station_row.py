"""The loop commits a part's row without building its record first (issue 18): the row is the one the record
makes, field for field, for every kind of part."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from edgead.contract.decide import RoiDecision
from edgead.daemon.plant import Selection
from edgead.daemon.station import PartOutcome, Station, _Part
from edgead.plc import Trigger
from edgead.records import RecordStore
from edgead.records.store import part_row
from edgead.verdict import Verdict

STATION = SimpleNamespace(model=SimpleNamespace(model_hash="ab" * 32))


def _accepted() -> _Part:
    lat = {"queue": 0.05, "capture": 0.02, "align": 1.1, "infer": 8.1, "decide": 0.06}
    outcome = PartOutcome(7, "17", Verdict.ACCEPT, 0.31, "000001.png", lat,
                          [RoiDecision("part", 0.31, 1.7, None, Verdict.ACCEPT)])
    return _Part(outcome, Trigger(17, time.monotonic_ns()), time.monotonic_ns(), raw=1.7, quality=0.97,
                 selection=Selection("", None))


def _rejected_with_rois() -> _Part:
    outcome = PartOutcome(8, "A-8", Verdict.REJECT, 0.93, "x.png", {"capture": 0.5, "align": 2.0, "infer": 9.0},
                          [RoiDecision("left", 0.93, 4.2, 12, Verdict.REJECT),
                           RoiDecision("right", 0.2, 0.9, 0, Verdict.ACCEPT)])
    trigger = Trigger("A-8", time.monotonic_ns(), recipe="housing-b", lot_id="L-42", requested_by="operator")
    return _Part(outcome, trigger, time.monotonic_ns(), raw=4.2, quality=0.91, selection=Selection("housing-b", "L-42"))


def _faulted() -> _Part:
    outcome = PartOutcome(9, "9", Verdict.FAULT, None, "", {"capture": 3.0})
    part = _Part(outcome, None, time.monotonic_ns(), selection=Selection("", None))
    part.fail(Verdict.FAULT, "camera: frame unreadable")
    return part


def _answered() -> _Part:  # the record a refused commit keeps: latencies of the answer and the answer itself
    part = _accepted()
    part.outcome.latencies_ms.update(record=0.2, signal=0.06, total=9.9)
    part.outcome.answer = Verdict.ACCEPT
    return part


@pytest.mark.parametrize("make", [_accepted, _rejected_with_rois, _faulted, _answered])
def test_the_loops_row_is_the_row_of_the_parts_record(make):
    part = make()
    assert Station._row(STATION, part) == Station._record(STATION, part).to_row()


def test_a_committed_row_reads_back_as_the_record(tmp_path):
    part = _rejected_with_rois()
    record = Station._record(STATION, part)
    with RecordStore(tmp_path / "records.sqlite") as store:
        row_id = store.commit_row(Station._row(STATION, part))
        assert store.get(row_id) == record.__class__(**{**record.__dict__, "id": row_id})
        assert part_row(**{k: v for k, v in record.__dict__.items() if k != "id"}) == record.to_row()


def test_without_opc_ua_the_loops_state_changes_import_nothing(monkeypatch):
    """``Plant.busy``/``health`` run in every part's time: without an OPC UA server they return at once."""
    import sys

    from edgead.daemon.plant import Plant

    plant = Plant.__new__(Plant)  # a plant without a server, as Plant(cfg) makes it when opcua is off
    plant.server, plant._state = None, None
    monkeypatch.delitem(sys.modules, "edgead.opcua.address_space", raising=False)
    plant.busy()
    plant.health(False)
    plant.health(True)
    assert "edgead.opcua.address_space" not in sys.modules
