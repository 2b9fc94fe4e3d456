"""MQTT north without a broker: the message and its schema, the acknowledged position, the config section."""
from __future__ import annotations

import math

import pytest

from edgead.errors import ConfigError
from edgead.north.config import MqttConfig
from edgead.north.message import MessageError, PartMessageSchema, encode, part_message
from edgead.north.position import AckPosition, read_position, resume_after, write_position
from edgead.records import PartRecord, RecordStore
from edgead.verdict import Verdict

T0 = 1_700_000_000_123_456_789


def _record(**kw) -> PartRecord:
    base = dict(t_ns=T0, part_id="17", seq=3, verdict=Verdict.REJECT, score=0.71, raw_score=2.5, capture_ms=1.5,
                total_ms=9.0, model_hash="ab" * 32, roi_scores={"left": 0.71}, id=41)
    base.update(kw)
    return PartRecord(**base)


def test_message_fields_and_literal_encoding():
    msg = part_message(_record(lot_id="L-7", recipe="bracket", requested_by="anna"), "line3")
    assert msg["message_id"] == "line3:41:1700000000123456789"
    assert (msg["verdict"], msg["lot_id"], msg["recipe"], msg["t_utc"], msg["requested_by"]) == \
        ("reject", "L-7", "bracket", "2023-11-14T22:13:20.123456Z", "anna")
    assert msg["timings_ms"] == {"queue": None, "capture": 1.5, "align": None, "infer": None, "decide": None,
                                 "record": None, "signal": None, "total": 9.0}
    PartMessageSchema().check(msg)
    assert encode({"a": 1, "b": "é"}) == '{"a":1,"b":"é"}'.encode()


def test_a_one_model_station_sends_null_recipe_and_lot():
    msg = part_message(_record(), "line3")
    assert msg["recipe"] is None and msg["lot_id"] is None and msg["requested_by"] is None  # a PLC's trigger
    PartMessageSchema().check(msg)
    PartMessageSchema().check({k: v for k, v in msg.items() if k != "requested_by"})  # optional: older stations


def test_non_finite_scores_become_null_and_long_errors_are_cut():
    msg = part_message(_record(verdict=Verdict.FAULT, score=float("nan"), raw_score=math.inf, error="x" * 5000),
                       "line3")
    assert msg["score"] is None and msg["raw_score"] is None and len(msg["error"]) == 2000
    PartMessageSchema().check(msg)
    encode(msg)  # no NaN reaches the JSON


@pytest.mark.parametrize("change,where", [({"verdict": "maybe"}, "verdict"), ({"record_id": 0}, "record_id"),
                                          ({"extra": 1}, "(top level)"), ({"part_id": "x" * 201}, "part_id")])
def test_schema_refuses_a_damaged_message_naming_the_field(change, where):
    msg = {**part_message(_record(), "line3"), **change}
    with pytest.raises(MessageError, match=rf"{where}"):
        PartMessageSchema().check(msg)


def test_position_survives_and_detects_a_replaced_database(tmp_path):
    path = tmp_path / "records.sqlite.mqtt-ack"
    assert read_position(path) is None
    with RecordStore(tmp_path / "records.sqlite") as store:
        ids = [store.add(_record(t_ns=T0 + i, id=None)) for i in range(5)]
        assert [r.id for r in store.after(2)] == ids[2:] and store.after(2, limit=1)[0].id == 3
        assert store.last_id() == 5
        assert resume_after(store, None, from_start=True) == 0
        assert resume_after(store, None, from_start=False) == 5
        write_position(path, AckPosition(3, T0 + 2))
        assert resume_after(store, read_position(path), from_start=True) == 3
        assert resume_after(store, AckPosition(3, T0 + 99), from_start=True) == 0  # another database's record 3
        assert resume_after(store, AckPosition(9, T0), from_start=True) == 0  # beyond this database
    path.write_text("{not json")
    assert read_position(path) is None  # re-sends from the start: duplicates, never a gap


@pytest.mark.parametrize("data,key", [
    ({"url": "http://broker"}, "mqtt.url"), ({"url": "mqtt://"}, "mqtt.url"),
    ({"url": "mqtt://u:p@broker"}, "mqtt.url"), ({"topic_prefix": "plant/#"}, "mqtt.topic_prefix"),
    ({"tls_cert_file": "/c.pem"}, "tls_key_file"), ({"password_file": "/pw"}, "mqtt.password_file"),
    ({"reconnect_min_ms": 500, "reconnect_max_ms": 100}, "mqtt.reconnect_max_ms"),
    ({"max_inflight": 0}, "mqtt.max_inflight"), ({"backlog": "some"}, "mqtt.backlog"),
    ({"keepalive": 5}, "mqtt.keepalive"),
])
def test_bad_mqtt_config_names_the_key(data, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        MqttConfig.from_dict(data)


def test_mqtt_config_files_are_checked(tmp_path):
    cfg = MqttConfig.from_dict({"url": "mqtts://b", "username": "u", "password_file": str(tmp_path / "pw")})
    assert cfg.address() == ("b", 8883, True)
    with pytest.raises(ConfigError, match="mqtt.password_file"):
        cfg.check_files()
    (tmp_path / "pw").write_text("secret\n")
    cfg.check_files()
    assert cfg.password() == "secret"
    with pytest.raises(ConfigError, match="mqtts://"):
        MqttConfig.from_dict({"url": "mqtt://b", "tls_ca_file": str(tmp_path / "pw")}).check_files()
