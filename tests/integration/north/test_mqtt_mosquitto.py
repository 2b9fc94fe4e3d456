"""MQTT north against a real mosquitto broker on 127.0.0.1: schema, order, QoS 1 with the record store as outbox
through a broker restart and a publisher kill -9, birth and last will, TLS, and a broker that refuses the login.

Delivery is at least once: each test counts duplicates (by message_id) and checks that no recorded part is missing
and that first arrivals are in record order."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from edgead.north.config import MqttConfig
from edgead.north.message import load_schema
from edgead.north.mqtt import MqttPublisher, PublisherState
from edgead.north.position import read_position
from edgead.records import PartRecord, RecordStore
from edgead.verdict import Verdict
from mqtt_peers import Subscriber, make_ca_and_server_cert

pytestmark = pytest.mark.timeout(180)
STATION = "line3"


def _add(store: RecordStore, start: int, n: int, part_id: str | None = None) -> list[int]:
    return [store.add(PartRecord.now(part_id=part_id or str(i), seq=i, verdict=Verdict.REJECT if i % 4 == 0 else
                                     Verdict.ACCEPT, score=0.7 if i % 4 == 0 else 0.2, raw_score=1.5,
                                     capture_ms=1.0, infer_ms=3.0, total_ms=5.0, model_hash="ab" * 32,
                                     roi_scores={"part": 0.2}))
            for i in range(start, start + n)]


def _cfg(broker, tmp_path: Path, **kw) -> MqttConfig:
    return MqttConfig(url=broker.url, reconnect_min_ms=50, reconnect_max_ms=500, poll_ms=20, ack_flush_ms=50,
                      keepalive_s=2, connect_timeout_s=5, **kw)


def _check_delivery(parts: list[dict], expected_ids: list[int]) -> int:
    """Every expected record arrived, first arrivals in record order; returns the number of duplicates."""
    first: dict[str, int] = {}
    for m in parts:
        first.setdefault(m["message_id"], m["record_id"])
    arrival = list(first.values())
    assert sorted(arrival) == expected_ids, f"missing: {sorted(set(expected_ids) - set(arrival))[:10]}"
    assert arrival == sorted(arrival), "first arrivals out of record order"
    print(f"{len(expected_ids)} parts, {len(parts) - len(first)} duplicates")  # shown with pytest -s
    return len(parts) - len(first)


def test_every_part_once_in_order_valid_against_the_schema(broker_factory, tmp_path):
    import jsonschema

    broker = broker_factory().start()
    sub = Subscriber(broker.port, f"edgead/{STATION}/#")
    db = tmp_path / "records.sqlite"
    with RecordStore(db) as store:
        ids = _add(store, 1, 30)
        with MqttPublisher(_cfg(broker, tmp_path), STATION, db) as pub:
            assert pub.wait_acknowledged(ids[-1], 30)
            ids += _add(store, 31, 10)  # parts recorded while running
            assert pub.wait_acknowledged(ids[-1], 30)
    parts = sub.wait_parts(40)
    sub.close()
    assert _check_delivery(parts, ids) == 0  # no outage: each once
    validator = jsonschema.Draft202012Validator(load_schema())
    for m in parts:
        validator.validate(m)
    assert parts[3]["verdict"] == "reject" and parts[3]["part_id"] == "4" and parts[3]["timings_ms"]["infer"] == 3.0
    status = sub.on("/status")
    assert [s["state"] for s in status] == ["online", "offline"] and status[-1]["clean"] is True
    assert read_position(db.with_name("records.sqlite.mqtt-ack")).record_id == ids[-1]


def test_broker_stop_and_restart_mid_run_loses_nothing(broker_factory, tmp_path):
    broker = broker_factory().start()
    sub = Subscriber(broker.port, f"edgead/{STATION}/parts")
    db = tmp_path / "records.sqlite"
    ids: list[int] = []
    with RecordStore(db) as store:
        stop = threading.Event()

        def daemon():  # the station keeps recording parts whatever the broker does
            i = 1
            while not stop.is_set():
                ids.extend(_add(store, i, 1))
                i += 1
                time.sleep(0.01)

        with MqttPublisher(_cfg(broker, tmp_path), STATION, db) as pub:
            writer = threading.Thread(target=daemon)
            writer.start()
            try:
                time.sleep(0.5)
                broker.stop()  # broker down mid-run
                deadline = time.monotonic() + 10
                while pub.state is PublisherState.ONLINE and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert pub.state is not PublisherState.ONLINE
                time.sleep(1.0)  # parts recorded while the broker is down
                broker.start()
                time.sleep(0.5)
            finally:
                stop.set()
                writer.join(10)
            assert pub.wait_acknowledged(ids[-1], 30), (pub.state, pub.last_error)
            assert pub.connects >= 2
    parts = sub.wait_parts(len(ids))
    sub.close()
    duplicates = _check_delivery(parts, ids)
    assert duplicates <= 20  # at most the in-flight window is sent again


def test_publisher_kill_9_and_restart_resumes_after_the_acknowledged_part(broker_factory, tmp_path):
    broker = broker_factory().start()
    sub = Subscriber(broker.port, f"edgead/{STATION}/#")
    db = tmp_path / "records.sqlite"
    cfg_path = tmp_path / "station.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": STATION, "storage": {"database": str(db)},
        "mqtt": {"url": broker.url, "reconnect_min_ms": 50, "reconnect_max_ms": 500, "poll_ms": 20,
                 "ack_flush_ms": 50, "keepalive_s": 1}}))

    def publisher() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "edgead.north", str(cfg_path)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)

    with RecordStore(db) as store:
        ids = _add(store, 1, 200)
        proc = publisher()
        try:
            deadline = time.monotonic() + 30
            while len(sub.parts()) < 50:  # kill it mid-stream
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            acked = read_position(db.with_name("records.sqlite.mqtt-ack"))
            assert acked is not None and acked.record_id < ids[-1]
            deadline = time.monotonic() + 15  # the broker's last will: offline, not clean
            while not any(s["state"] == "offline" and s["clean"] is False for s in sub.on("/status")):
                assert time.monotonic() < deadline, sub.on("/status")
                time.sleep(0.05)
            ids += _add(store, 201, 50)  # recorded while no publisher runs
            before = len(sub.parts())
            proc = publisher()
            parts = sub.wait_parts(len(ids))
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            proc.stderr.close()
    sub.close()
    duplicates = _check_delivery(parts, ids)
    resent = [m["record_id"] for m in parts[before:]]
    assert min(resent) > acked.record_id - 1  # the restart resumed after the acknowledged part, not from the start
    assert duplicates <= len(ids) - acked.record_id


def test_a_broker_that_refuses_the_login_never_gets_a_part_and_nothing_crashes(broker_factory, tmp_path):
    broker = broker_factory(users={"station": "right"}).start()
    sub = Subscriber(broker.port, "edgead/#", username="station", password="right")
    (tmp_path / "pw").write_text("wrong\n")
    db = tmp_path / "records.sqlite"
    with RecordStore(db) as store:
        _add(store, 1, 5)
        cfg = _cfg(broker, tmp_path, username="station", password_file=tmp_path / "pw")
        with MqttPublisher(cfg, STATION, db) as pub:
            deadline = time.monotonic() + 15
            while pub.state is not PublisherState.REFUSED:
                assert time.monotonic() < deadline, (pub.state, pub.last_error)
                time.sleep(0.02)
            assert "Bad user name or password" in pub.last_error or "Not authorized" in pub.last_error
            assert pub.acknowledged_id == 0 and not pub.wait_acknowledged(1, 0.5)
            assert pub._thread.is_alive()
        anonymous = MqttPublisher(_cfg(broker, tmp_path), STATION, db).start()
        try:
            deadline = time.monotonic() + 15
            while anonymous.state is not PublisherState.REFUSED:
                assert time.monotonic() < deadline, (anonymous.state, anonymous.last_error)
                time.sleep(0.02)
        finally:
            anonymous.stop()
        (tmp_path / "pw").write_text("right\n")  # the password is fixed: everything recorded goes out
        with MqttPublisher(cfg, STATION, db) as pub:
            assert pub.wait_acknowledged(5, 30)
    assert _check_delivery(sub.wait_parts(5), [1, 2, 3, 4, 5]) == 0
    assert "not authorised" in broker.log().lower() or "bad" in broker.log().lower()
    sub.close()


def test_tls_with_the_plant_ca_and_a_refused_unknown_ca(broker_factory, tmp_path):
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    broker = broker_factory(tls=(cert, key)).start()
    db = tmp_path / "records.sqlite"
    with RecordStore(db) as store:
        _add(store, 1, 3)
        url = f"mqtts://127.0.0.1:{broker.port}"
        (tmp_path / "other").mkdir()
        other_ca, _, _ = make_ca_and_server_cert(tmp_path / "other")  # a CA that did not sign the broker
        wrong = MqttPublisher(MqttConfig(url=url, tls_ca_file=other_ca, reconnect_min_ms=50, reconnect_max_ms=200),
                              STATION, db).start()
        try:
            deadline = time.monotonic() + 15
            while not (wrong.last_error and "certificate verify failed" in wrong.last_error):
                assert time.monotonic() < deadline, (wrong.state, wrong.last_error)
                time.sleep(0.02)
            assert wrong.acknowledged_id == 0
        finally:
            wrong.stop()
        sub = Subscriber(broker.port, f"edgead/{STATION}/parts", tls_ca=ca)
        with MqttPublisher(MqttConfig(url=url, tls_ca_file=ca, poll_ms=20), STATION, db) as pub:
            assert pub.wait_acknowledged(3, 30), (pub.state, pub.last_error)
        assert _check_delivery(sub.wait_parts(3), [1, 2, 3]) == 0
        sub.close()


def test_a_record_the_schema_refuses_goes_to_invalid_and_does_not_block_the_next(broker_factory, tmp_path):
    broker = broker_factory().start()
    sub = Subscriber(broker.port, f"edgead/{STATION}/#")
    db = tmp_path / "records.sqlite"
    with RecordStore(db) as store:
        ids = _add(store, 1, 2) + _add(store, 3, 1, part_id="x" * 500) + _add(store, 4, 2)
        with MqttPublisher(_cfg(broker, tmp_path), STATION, db) as pub:
            assert pub.wait_acknowledged(ids[-1], 30)
            assert pub.invalid == 1
    deadline = time.monotonic() + 10
    while len(sub.parts()) < 4 or not sub.on("/invalid"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    sub.close()
    assert [m["record_id"] for m in sub.parts()] == [1, 2, 4, 5]
    invalid = sub.on("/invalid")
    assert invalid[0]["record_id"] == 3 and "part_id" in invalid[0]["error"]
