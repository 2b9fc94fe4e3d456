"""The demo's MQTT step: the records published to a mosquitto it starts, or a clear skip where none is at hand."""
from __future__ import annotations

import shutil

import pytest

from edgead.demo import north
from edgead.demo.run import check_summary
from edgead.errors import EdgeadError
from edgead.records import PartRecord, RecordStore
from edgead.verdict import Verdict


def _records(path, n: int) -> None:
    with RecordStore(path) as store:
        for i in range(n):
            store.commit(PartRecord.now(part_id=str(i), seq=i, verdict=Verdict.ACCEPT, score=0.1, model_hash="ab",
                                        recipe="", lot_id="LOT-1"))


@pytest.mark.timeout(120)
def test_the_demo_publishes_every_record_to_a_local_broker(tmp_path):
    if north.missing_peer():
        pytest.skip(north.missing_peer())
    _records(tmp_path / "records.sqlite", 25)
    got = north.show_mqtt_north(tmp_path / "records.sqlite", "demo-station", 25)
    assert got["all_acknowledged"] and got["published"] == 25 and got["unique"] == 25, got
    assert got["first"]["station"] == "demo-station" and got["first"]["lot_id"] == "LOT-1"
    assert got["first"]["recipe"] is None  # a one-model station
    summary = {"plc": {"lost": [], "mismatched": [], "answer_differs_from_record": []}, "records_written": 25,
               "parts": 25, "mqtt_north": got}
    check_summary(summary)
    with pytest.raises(EdgeadError, match="MQTT north lost parts"):
        check_summary({**summary, "mqtt_north": {**got, "unique": 24}})


def test_without_a_broker_the_demo_skips_the_step_and_says_why(tmp_path, monkeypatch):
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mosquitto" else real(name))
    assert north.show_mqtt_north(tmp_path / "records.sqlite", "demo-station", 0) == {
        "skipped": "mosquitto not installed (Debian package mosquitto; scripts/system-deps.sh)"}
