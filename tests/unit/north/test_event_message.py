"""The station-event message (a drift alarm raised or cleared) with literal values, and its shipped schema."""
from __future__ import annotations

import pytest

from edgead.north.message import EVENT_SCHEMA_PATH, MessageError, PartMessageSchema, encode, event_message
from edgead.records.events import EventKind, EventState, StationEvent

T0 = 1_700_000_000_123_456_789


def _event(**kw) -> StationEvent:
    base = dict(t_ns=T0, station="line3", kind=EventKind.DRIFT, state=EventState.RAISED, metric="brightness",
                value=-0.3125, bound=0.15, window_parts=20, message="drift alarm (brightness): mean brightness -31.2 %",
                detail={"recipe": "housing-a", "model_hash": "ab" * 32, "note": "x"}, id=7)
    base.update(kw)
    return StationEvent(**base)


def test_event_message_fields_and_literal_encoding():
    msg = event_message(_event(), "line3")
    assert msg == {
        "schema": "edgead.station-event/1", "message_id": "line3:event:7:1700000000123456789", "station": "line3",
        "event_id": 7, "kind": "drift", "state": "raised", "metric": "brightness", "value": -0.3125, "bound": 0.15,
        "window_parts": 20, "t_utc": "2023-11-14T22:13:20.123456Z",
        "message": "drift alarm (brightness): mean brightness -31.2 %", "recipe": "housing-a",
        "model_hash": "ab" * 32, "detail": {"note": "x"}}
    PartMessageSchema(EVENT_SCHEMA_PATH).check(msg)
    assert encode(event_message(_event(detail={}, value=None, id=1), "s")) == (
        b'{"schema":"edgead.station-event/1","message_id":"s:event:1:1700000000123456789","station":"s",'
        b'"event_id":1,"kind":"drift","state":"raised","metric":"brightness","value":null,"bound":0.15,'
        b'"window_parts":20,"t_utc":"2023-11-14T22:13:20.123456Z","message":"drift alarm (brightness): mean '
        b'brightness -31.2 %","recipe":null,"model_hash":null,"detail":{}}')


def test_a_cleared_alarm_by_reset_and_a_one_model_station():
    msg = event_message(_event(state=EventState.CLEARED, window_parts=0, detail={"recipe": "", "model_hash": "cd"}),
                        "line3")
    assert (msg["state"], msg["window_parts"], msg["recipe"], msg["model_hash"]) == ("cleared", 0, None, "cd")
    PartMessageSchema(EVENT_SCHEMA_PATH).check(msg)


@pytest.mark.parametrize("change,where", [({"state": "flapping"}, "state"), ({"event_id": 0}, "event_id"),
                                          ({"extra": 1}, "(top level)"), ({"kind": "party"}, "kind")])
def test_the_event_schema_refuses_a_damaged_message_naming_the_field(change, where):
    msg = {**event_message(_event(), "line3"), **change}
    with pytest.raises(MessageError, match=rf"{where}"):
        PartMessageSchema(EVENT_SCHEMA_PATH).check(msg)
