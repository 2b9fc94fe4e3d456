"""Fixtures: mosquitto brokers started and stopped by the tests (see mqtt_peers)."""
from __future__ import annotations

import pytest

from mqtt_peers import MOSQUITTO, Mosquitto


@pytest.fixture
def broker_factory(tmp_path):
    """Make brokers (not started); every one is stopped at teardown."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed (Debian package mosquitto; scripts/system-deps.sh)")
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt (the [mqtt] extra)")
    made: list[Mosquitto] = []

    def make(**kwargs) -> Mosquitto:
        broker = Mosquitto(tmp_path, **kwargs)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()
