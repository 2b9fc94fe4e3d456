"""The demo's plant link: the station's records published over MQTT when a broker can be started here.

After the station run, :func:`show_mqtt_north` starts a ``mosquitto`` on a free loopback port (the Debian package
that ``scripts/system-deps.sh`` installs), subscribes to the station's topic, and runs the MQTT north publisher
(:class:`edgead.north.mqtt.MqttPublisher`, what ``python -m edgead.north`` runs) over the demo's record database
until every part is acknowledged. Where ``mosquitto``, paho-mqtt or jsonschema is missing it returns a reason
instead, and the demo says it skipped this step.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from edgead.north.config import MqttConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def missing_peer() -> str | None:
    """Why the MQTT step cannot run here, or None."""
    if shutil.which("mosquitto") is None:
        return "mosquitto not installed (Debian package mosquitto; scripts/system-deps.sh)"
    for module, extra in (("paho", "mqtt"), ("jsonschema", "mqtt")):
        if importlib.util.find_spec(module) is None:
            return f"{module} not installed (pip install 'edgead[{extra}]')"
    return None


def show_mqtt_north(database: Path, station: str, parts: int, timeout_s: float = 60.0) -> dict:
    """Publish the demo's records to a local broker and count what a subscriber received.

    Returns:
        ``{"skipped": reason}``, or ``{"published": n, "received": n, "unique": n, "topic": ..., "first": msg}``.
    """
    reason = missing_peer()
    if reason is not None:
        return {"skipped": reason}
    import paho.mqtt.client as mqtt

    from edgead.north.mqtt import MqttPublisher
    from edgead.records import RecordStore

    with RecordStore(database) as store:
        last_id = store.last_id()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="edgead-demo-mqtt-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        + ("user root\n" if os.geteuid() == 0 else ""))
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            if not _wait_listening(port):
                return {"skipped": "mosquitto did not start on 127.0.0.1"}
            cfg = MqttConfig(url=f"mqtt://127.0.0.1:{port}", ack_file=Path(tmp) / "ack")
            topic = f"{cfg.topic_prefix}/{station}/parts"
            received: list[dict] = []
            subscribed = threading.Event()
            sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edgead-demo-subscriber")
            sub.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
            sub.on_subscribe = lambda *_: subscribed.set()
            sub.on_message = lambda c, u, msg: received.append(json.loads(msg.payload))
            sub.connect("127.0.0.1", port)
            sub.loop_start()
            try:
                subscribed.wait(10)
                with MqttPublisher(cfg, station, database) as publisher:
                    done = publisher.wait_acknowledged(last_id, timeout_s) if last_id else True
                    published = publisher.acknowledged
                deadline = time.monotonic() + 5
                while len({m["message_id"] for m in received}) < published and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                sub.loop_stop()
                sub.disconnect()
        finally:
            broker.terminate()
            broker.wait(10)
    unique = len({m["message_id"] for m in received})
    return {"published": published, "all_acknowledged": bool(done), "received": len(received), "unique": unique,
            "parts": parts, "topic": topic, "first": received[0] if received else None}
