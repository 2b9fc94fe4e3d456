"""North-bound plant integration: MQTT (every part, the record store as outbox) and, with the ``opcua`` extra, an
OPC UA server. Nothing here runs in the inspection loop.

Run the MQTT publisher beside the daemon (a second systemd unit), reading the daemon's record database::

    python -m edgead.north STATION.yaml
"""
from edgead.north.config import Backlog, MqttConfig

__all__ = ["Backlog", "MqttConfig"]
