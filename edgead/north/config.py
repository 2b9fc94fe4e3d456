"""The ``mqtt`` configuration section (MQTT north): frozen, validated once.

Example:
    >>> MqttConfig.from_dict({"url": "mqtts://broker.plant:8883", "username": "line3"}).address()
    ('broker.plant', 8883, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from edgead.errors import ConfigError

MQTT_PORT, MQTTS_PORT = 1883, 8883
_URL_HINT = "e.g. mqtt://127.0.0.1:1883, or mqtts://broker.plant:8883 for TLS"


class Backlog(str, Enum):
    """What a publisher without an acknowledged position (first start) sends."""

    ALL = "all"  # every part in the record store, oldest first: nothing recorded is left out
    NEW = "new"  # only parts recorded from now on (a station that already holds a long history)


@dataclass(frozen=True)
class MqttConfig:
    """``mqtt``: one JSON message per part (and per drift alarm raised or cleared) to an MQTT broker, the record store
    as the outbox. The publisher runs beside the daemon: ``python -m edgead.north STATION.yaml`` (``edgead run``
    does not start it yet; see docs/plant-integration.md).

    Attributes:
        url: the broker, ``mqtt://HOST:PORT`` (1883) or ``mqtts://HOST:PORT`` (TLS, 8883); ``null`` turns MQTT off.
        topic_prefix: parts go to ``PREFIX/STATION/parts``, drift events to ``PREFIX/STATION/events``, the online
            state to ``PREFIX/STATION/status``
            (retained; the broker publishes the last will ``offline`` when the station vanishes).
        client_id: the MQTT client id; ``null``: ``edgead-STATION``.
        username: user name sent to the broker; ``null``: none.
        password_file: a file holding the password (first line), readable by the daemon's user only; the
            password never appears in the station config.
        tls_ca_file: ``mqtts``: CA certificates (PEM) that signed the broker's certificate; ``null``: the
            system's CAs.
        tls_cert_file: ``mqtts``: client certificate (PEM) when the broker asks for one.
        tls_key_file: ``mqtts``: the client certificate's private key (PEM).
        keepalive_s: MQTT keep-alive; the broker declares the station offline (last will) after 1.5 times this.
        connect_timeout_s: one connection attempt, CONNACK included.
        reconnect_min_ms: first wait after a failed or lost connection; doubles on each failure.
        reconnect_max_ms: the longest wait between attempts (also after the broker refused the credentials).
        max_inflight: messages published and not yet acknowledged (PUBACK) at once.
        poll_ms: how often the record store is read for new parts.
        ack_file: where the id of the last part the broker acknowledged is kept (fsynced); ``null``: beside the
            record database, ``DATABASE.mqtt-ack``. The last acknowledged event's goes beside it, ``ACK_FILE-events``.
        ack_flush_ms: the acknowledged position is written at most this often (a crash re-sends at most that much).
        backlog: first start only (no ``ack_file`` yet): ``all`` publishes every recorded part, ``new`` only those
            recorded from then on.
    """

    url: str | None = None
    topic_prefix: str = "edgead"
    client_id: str | None = None
    username: str | None = None
    password_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    reconnect_min_ms: int = 200
    reconnect_max_ms: int = 10000
    max_inflight: int = 20
    poll_ms: int = 100
    ack_file: Path | None = None
    ack_flush_ms: int = 200
    backlog: Backlog = Backlog.ALL

    def __post_init__(self) -> None:
        if self.url is not None:
            self.address()
        if not self.topic_prefix or any(c in self.topic_prefix for c in "#+\0") or self.topic_prefix.endswith("/"):
            raise ConfigError(f"mqtt.topic_prefix: {self.topic_prefix!r} is not a topic prefix",
                              hint="no wildcards (# +), no trailing /, e.g. plant1/line3")
        for name in ("keepalive_s", "reconnect_min_ms", "max_inflight", "poll_ms", "ack_flush_ms"):
            if getattr(self, name) < 1:
                raise ConfigError(f"mqtt.{name}: must be >= 1, got {getattr(self, name)}")
        if self.reconnect_max_ms < self.reconnect_min_ms:
            raise ConfigError(f"mqtt.reconnect_max_ms: {self.reconnect_max_ms} is below reconnect_min_ms")
        if not self.connect_timeout_s > 0:
            raise ConfigError(f"mqtt.connect_timeout_s: must be > 0, got {self.connect_timeout_s}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError("mqtt.tls_cert_file and mqtt.tls_key_file go together", hint="set both or neither")
        if self.password_file is not None and self.username is None:
            raise ConfigError("mqtt.password_file needs mqtt.username")

    @property
    def enabled(self) -> bool:
        """True when a broker is configured."""
        return self.url is not None

    def address(self) -> tuple[str, int, bool]:
        """``(host, port, tls)`` from :attr:`url`.

        Raises:
            ConfigError: naming ``mqtt.url``.
        """
        try:
            parts = urlsplit(str(self.url))
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"mqtt.url: {self.url!r} is not mqtt://HOST:PORT ({exc})", hint=_URL_HINT) from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.username or parts.password:
            raise ConfigError(f"mqtt.url: {self.url!r} is not mqtt://HOST:PORT or mqtts://HOST:PORT",
                              hint=_URL_HINT + "; credentials go in mqtt.username and mqtt.password_file")
        tls = parts.scheme == "mqtts"
        return parts.hostname, port or (MQTTS_PORT if tls else MQTT_PORT), tls

    def password(self) -> str | None:
        """The password from :attr:`password_file` (first line), or None.

        Raises:
            ConfigError: if the file cannot be read.
        """
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text().splitlines()[0] if self.password_file.stat().st_size else ""
        except OSError as exc:
            raise ConfigError(f"mqtt.password_file: {self.password_file} cannot be read: {exc}",
                              hint="create it (chmod 600, owned by the daemon's user)") from exc

    def check_files(self) -> None:
        """What ``edgead check`` adds: the password and TLS files exist and can be read.

        Raises:
            ConfigError: naming the key.
        """
        self.password()
        for name in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"mqtt.{name}: {path} does not exist")
        if self.url is not None and not self.address()[2] and (self.tls_ca_file or self.tls_cert_file):
            raise ConfigError("mqtt: TLS files are set but mqtt.url is mqtt://", hint="use mqtts:// for TLS")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MqttConfig":
        """Build the section from plain data, rejecting unknown keys.

        Raises:
            ConfigError: on an unknown key or a bad value.
        """
        from edgead.config import from_dict

        return from_dict(cls, data, "mqtt")
