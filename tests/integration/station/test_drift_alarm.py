"""Drift alarms on the synthetic station: a run whose lighting dims raises them, a steady run raises none.

Both runs replay captures of the same station through the daemon's loop (camera-triggered, discrete PLC twin);
the dimming run's lamp falls linearly to 50 % (``generate_captures(lighting_trend=-0.5)``). The alarm must show
in all its places: the metric, the log, ``/healthz``'s drift section, the listeners and the record store's
``events`` table (what MQTT north publishes; tests/integration/north/test_drift_events.py checks MQTT and OPC UA);
and the verdicts must be those of the same station without drift tracking (an alarm never changes one).
"""
from __future__ import annotations

import logging

import pytest
from replay_station import replay_config, step_to_end, write_config  # tests/helpers

from edgead.daemon.config import load_station
from edgead.daemon.station import Station
from edgead.errors import RecordError
from edgead.data.synthetic import generate_captures
from edgead.observe.http import health
from edgead.records import RecordStore
from edgead.records.events import EventTable

pytestmark = pytest.mark.timeout(300)
N = 40


def _run(tmp_path, station, bundle, captures, window: int, security: dict):
    cfg = replay_config(tmp_path, station, bundle, security, captures,
                        storage={"database": str(tmp_path / f"r{window}.sqlite"), "save_images": "none"},
                        drift={"window_parts": window, "min_parts": 10})
    path = write_config(tmp_path, cfg)
    events = []
    with Station(load_station(path)) as st:
        st.drift.subscribe(events.append)
        verdicts = [o.verdict for o in step_to_end(st)]
        result = verdicts, events, st.drift.state(), health(st.metrics)[1], st.metrics.render()
    with RecordStore(tmp_path / f"r{window}.sqlite") as store:  # each alarm's edges on record (the stop clears)
        recorded = [(e.metric, e.state.value) for e in EventTable(store).after(0)]
    assert recorded == [(e.signal.value, "raised" if e.alarm else "cleared") for e in events]
    return result


@pytest.fixture(scope="module")
def runs(small_station, tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    steady = generate_captures(root / "steady", small_station.spec, n=N, defect_rate=0.2, seed=5)
    dimming = generate_captures(root / "dimming", small_station.spec, n=N, defect_rate=0.2, seed=5,
                                lighting_trend=-0.5)
    return steady, dimming


def test_dimming_lighting_raises_the_alarm_and_a_steady_run_none(small_station, padim_bundle, bundle_key, runs, tmp_path,
                                                                  caplog):
    steady, dimming = runs
    caplog.set_level(logging.INFO, logger="edgead.daemon.drift")
    verdicts, events, state, body, text = _run(tmp_path, small_station, padim_bundle.bundle, steady, window=20,
                                      security=bundle_key.security)
    assert len(verdicts) == N
    assert events == [] and state["alarms"] == [] and body["drift"]["alarms"] == [], state
    assert body["status"] == "ready"
    assert 'edgead_drift_alarm{signal="brightness"} 0' in text and "drift alarm" not in caplog.text
    assert state["values"]["score"] is not None  # the bundle carries its good-score quantiles

    caplog.clear()
    verdicts_d, events, state, body, text = _run(tmp_path, small_station, padim_bundle.bundle, dimming, window=20,
                                        security=bundle_key.security)
    assert "brightness" in state["alarms"] and state["values"]["brightness"] < -0.15, state
    assert [e.signal.value for e in events if e.alarm][0] in state["alarms"]
    assert body["drift"]["alarms"] == state["alarms"] and body["status"] == "ready"  # reported, never unready
    assert 'edgead_drift_alarm{signal="brightness"} 1' in text
    assert "drift alarm (brightness)" in caplog.text

    # an alarm never changes a verdict: the same dimming run without drift tracking judges every part alike
    verdicts_off, events_off, state_off, _, _ = _run(tmp_path, small_station, padim_bundle.bundle, dimming, window=0,
                                                        security=bundle_key.security)
    assert verdicts_off == verdicts_d and events_off == [] and state_off["alarms"] == []


def test_an_event_the_store_refuses_costs_no_part(small_station, padim_bundle, bundle_key, runs, tmp_path):
    """The events' writes fail (an I/O error injected into the event writer's table): every part is still judged
    and recorded, the alarm still shows, and the refusals are counted."""
    _, dimming = runs
    cfg = replay_config(tmp_path, small_station, padim_bundle.bundle, bundle_key.security, dimming,
                        storage={"database": str(tmp_path / "refused.sqlite"), "save_images": "none"},
                        drift={"window_parts": 20, "min_parts": 10})

    def refuse(events):
        raise RecordError("records database 'refused.sqlite': write failed: disk I/O error")

    with Station(load_station(write_config(tmp_path, cfg))) as st:
        st.recorder.events.table.add = refuse
        outcomes = step_to_end(st)
        assert "brightness" in st.drift.state()["alarms"]
        writer, metrics = st.recorder.events, st.metrics
    assert len(outcomes) == N and all(o.row_id is not None for o in outcomes)
    assert writer.counts["write_failed"] >= 1 and writer.counts["recorded"] == 0 and writer.counts["dropped"] >= 1
    assert f'edgead_events_total{{outcome="dropped"}} {writer.counts["dropped"]}' in metrics.render()
    with RecordStore(tmp_path / "refused.sqlite") as store:
        assert sum(store.counts().values()) == N and EventTable(store).last_id() == 0
