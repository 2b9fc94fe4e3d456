"""The daemon killed with SIGKILL while the MQTT north publishes: every part the daemon recorded reaches a real
mosquitto subscriber, at least once (de-duplicated on message_id), first arrivals in record order."""
from __future__ import annotations

import random
import signal
import sqlite3
import time

import pytest
import yaml

from daemon_process import notify_socket, running_daemon  # tests/helpers
from mqtt_peers import Subscriber, north_sidecar

pytestmark = pytest.mark.timeout(420)
STATION = "line9"
KILLS = 3


def test_daemon_kill_9_loses_no_recorded_part_on_the_way_north(broker_factory, small_station, padim_bundle,
                                                               bundle_key, tmp_path):
    broker = broker_factory().start()
    sub = Subscriber(broker.port, f"edgead/{STATION}/parts")
    db = tmp_path / "records.sqlite"
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump({
        "name": STATION, "trigger": "camera", "security": bundle_key.security,
        "camera": {"url": f"folder://{small_station.captures}?fps=0&loop=1&pattern=*.png"},
        "reference": str(small_station.reference), "model": {"bundle": str(padim_bundle.bundle.root),
                                                             "warmup_runs": 0},
        "plc": {"url": "loop://", "protocol": "discrete"},
        "storage": {"database": str(db), "save_images": "none"},
        "observe": {"metrics_listen": None, "log_level": "warning"},
        "mqtt": {"url": broker.url, "reconnect_min_ms": 50, "reconnect_max_ms": 500, "poll_ms": 20,
                 "ack_flush_ms": 50}}))
    rng = random.Random(19)
    with north_sidecar(path) as north, notify_socket(tmp_path) as (sock, sock_path):
        try:
            for _ in range(KILLS):
                with running_daemon(path, sock, sock_path) as daemon:
                    time.sleep(rng.uniform(0.5, 2.0))  # parts flowing: recorded, and published behind them
                    daemon.send_signal(signal.SIGKILL)
                    assert daemon.wait(30) == -signal.SIGKILL
            with sqlite3.connect(db) as conn:
                ids = [r[0] for r in conn.execute("SELECT id FROM parts ORDER BY id")]
            assert len(ids) >= KILLS, "the daemon recorded no parts"
            parts = sub.wait_parts(len(ids), timeout_s=60)
            assert north.poll() is None, north.stderr.read()[-2000:]
        finally:
            sub.close()
    first: dict[str, int] = {}
    for m in parts:
        first.setdefault(m["message_id"], m["record_id"])
    arrival = list(first.values())
    assert sorted(arrival) == ids and arrival == sorted(arrival)  # every recorded part, first arrivals in order
    assert all(m["station"] == STATION and m["recipe"] is None for m in parts)
    print(f"{KILLS} kills, {len(ids)} parts recorded, all received; {len(parts) - len(first)} duplicates")
