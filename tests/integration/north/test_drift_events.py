"""Drift alarms leave a running station as MQTT messages and OPC UA events.

A real daemon (``python -m edgead run``) with its OPC UA server, the MQTT north sidecar (``python -m edgead.north``)
and a real mosquitto; an asyncua client triggers every part (OPC UA ``Trigger``) and is subscribed to the events of
the vision-system object; a paho subscriber takes every message. The line first runs steady (30 parts judged over
a full window: no event anywhere), then its lamp dims (``lighting_trend``): the brightness alarm goes out as an OPC UA
``DriftAlarmEventType`` event, in ``DriftMonitoring`` and as a schema-valid MQTT message. With the broker down, a
SIGHUP reload clears the alarm and the still-dim lamp raises it again: both are recorded and reach the subscriber
once the broker is back, in order; the daemon's stop clears it last.
"""
from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import time

import pytest

from daemon_process import notify_socket, running_daemon  # tests/helpers
from modbus_peers import free_port
from mqtt_peers import Subscriber, north_sidecar
from opcua_peers import OpcUaStation, opcua_section  # tests/helpers
from replay_station import replay_config, write_config  # tests/helpers

from edgead.data.synthetic import generate_captures
from edgead.north.message import EVENT_SCHEMA_PATH, load_schema

asyncua = pytest.importorskip("asyncua", reason="asyncua (the [opcua] extra)")
jsonschema = pytest.importorskip("jsonschema")
pytestmark = pytest.mark.timeout(600)
STATION = "line5"
N_STEADY, N_DIM = 30, 50


def _line(tmp_path, spec):
    """One replay folder: 30 steady captures, then 50 of a lamp dimming to 50 %."""
    steady = generate_captures(tmp_path / "steady", spec, n=N_STEADY, defect_rate=0.2, seed=5)
    dim = generate_captures(tmp_path / "dim", spec, n=N_DIM, defect_rate=0.2, seed=6, lighting_trend=-0.5)
    line = tmp_path / "line"
    line.mkdir()
    for i, src in enumerate(sorted(steady.glob("*.png")) + sorted(dim.glob("*.png"))):
        shutil.copy(src, line / f"{i:06d}.png")
    return line


def _events_table(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, metric, state FROM events ORDER BY id").fetchall()


def _wait(predicate, what: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while not (found := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def test_drift_alarms_go_out_over_mqtt_and_opcua_and_a_steady_run_sends_none(broker_factory, small_station,
                                                                               padim_bundle, bundle_key, tmp_path):
    broker = broker_factory().start()
    sub = Subscriber(broker.port, f"edgead/{STATION}/#")
    opc_port = free_port()
    db = tmp_path / "records.sqlite"
    cfg = replay_config(tmp_path, small_station, padim_bundle.bundle, bundle_key.security,
                        _line(tmp_path, small_station.spec), name=STATION, trigger="plc",
                        storage={"database": str(db), "save_images": "none"},
                        observe={"log_level": "warning"}, drift={"window_parts": 20, "min_parts": 10},
                        opcua=opcua_section(tmp_path, opc_port),
                        mqtt={"url": broker.url, "reconnect_min_ms": 50, "reconnect_max_ms": 500, "poll_ms": 20,
                              "ack_flush_ms": 50})
    cfg["plc"] = {"url": f"tcp://127.0.0.1:{free_port()}", "protocol": "modbus-tcp-server"}  # triggers: OPC UA
    path = write_config(tmp_path, cfg)
    station = OpcUaStation(f"opc.tcp://127.0.0.1:{opc_port}/edgead", tmp_path / "pki", STATION)

    def mqtt_brightness() -> list[str]:
        first = {m["message_id"]: m for m in sub.on("/events")}
        return [m["state"] for m in first.values() if m["metric"] == "brightness"]

    with north_sidecar(path) as north, notify_socket(tmp_path) as (sock, sock_path):
        try:
            with running_daemon(path, sock, sock_path) as daemon:
                async def main():
                    client = await station.connect("op")
                    got: list = []

                    class Handler:
                        def event_notification(self, event):
                            got.append(event)

                    subscription = await client.create_subscription(20, Handler())
                    await subscription.subscribe_events(station.node(client, ""),
                                                        station.node(client, "DriftAlarmEventType"))
                    seq = iter(range(10_000))

                    async def parts_until(predicate, most: int) -> None:
                        for _ in range(most):
                            if predicate():
                                return
                            part = f"P{next(seq)}"
                            assert await station.call(client, "Trigger", part) is True
                            await station.result(client, part)
                        await asyncio.sleep(1.0)  # the last part's event, if any, is on its way
                        assert predicate(), f"no drift event after {most} parts"

                    def brightness(state: str) -> int:
                        return sum(e.Metric == "brightness" and e.State == state for e in got)

                    try:
                        # a steady line: a full window judged, no event anywhere
                        for _ in range(N_STEADY):
                            part = f"P{next(seq)}"
                            assert await station.call(client, "Trigger", part) is True
                            await station.result(client, part)
                        await asyncio.to_thread(sub.wait_parts, N_STEADY, 60)  # north is publishing
                        await asyncio.sleep(1.0)
                        assert got == [] and sub.on("/events") == [] and _events_table(db) == []
                        assert await station.node(client, "DriftMonitoring.Alarm").read_value() is False

                        # the lamp dims: the alarm, over OPC UA (event and variables) and MQTT
                        await parts_until(lambda: brightness("raised") == 1, N_DIM)
                        raised = next(e for e in got if e.Metric == "brightness")
                        assert raised.Value < -0.15 and raised.Bound == 0.15 and raised.Severity == 700
                        assert raised.WindowParts >= 10 and "drift alarm (brightness)" in raised.Message.Text
                        assert await station.node(client, "DriftMonitoring.Alarm").read_value() is True
                        assert "brightness" in (await station.node(client, "DriftMonitoring.ActiveSignals")
                                                .read_value()).split(",")
                        await asyncio.to_thread(_wait, lambda: mqtt_brightness() == ["raised"], "no MQTT drift event")

                        # broker down: a reload clears the alarm and the dim lamp raises it again, on record only
                        broker.stop()
                        daemon.send_signal(signal.SIGHUP)
                        await asyncio.to_thread(_wait, lambda: brightness("cleared") == 1, "no cleared event", 180)
                        await parts_until(lambda: brightness("raised") == 2, 20)
                        cleared = [e for e in got if e.Metric == "brightness" and e.State == "cleared"][0]
                        assert cleared.WindowParts == 0 and "reloaded" in cleared.Message.Text
                        assert [r[1:] for r in _events_table(db) if r[1] == "brightness"] == \
                            [("brightness", "raised"), ("brightness", "cleared"), ("brightness", "raised")]
                        assert mqtt_brightness() == ["raised"]
                    finally:
                        await client.disconnect()

                asyncio.run(main())
                broker.start()  # back: what was recorded meanwhile arrives, in order
                _wait(lambda: mqtt_brightness() == ["raised", "cleared", "raised"], "events recorded while the broker "
                      "was down did not arrive", 60)
                daemon.send_signal(signal.SIGTERM)
                assert daemon.wait(60) == 0
            _wait(lambda: mqtt_brightness() == ["raised", "cleared", "raised", "cleared"], "no cleared event at stop")
            _wait(lambda: len({m["message_id"] for m in sub.on("/events")}) == len(_events_table(db)), "events missing")
            assert north.poll() is None, north.stderr.read()[-2000:]
        finally:
            sub.close()
    assert north.returncode == 0
    validator = jsonschema.Draft202012Validator(load_schema(EVENT_SCHEMA_PATH))
    first: dict = {}
    for message in sub.on("/events"):
        validator.validate(message)
        first.setdefault(message["message_id"], message)
    table = _events_table(db)
    assert [m["event_id"] for m in first.values()] == [r[0] for r in table]  # every event once, in record order
    last = [m for m in first.values() if m["metric"] == "brightness"][-1]
    assert last["state"] == "cleared" and last["window_parts"] == 0 and "station stopped" in last["message"]
    assert all(m["station"] == STATION and m["recipe"] is None and len(m["model_hash"]) == 64
               for m in first.values())
    print(f"events on record and received: {[(m['metric'], m['state']) for m in first.values()]}; "
          f"{len(sub.on('/events')) - len(first)} duplicates")
