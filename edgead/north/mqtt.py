"""MQTT north: publish every recorded part and station event to a broker, the record store as the outbox
(paho-mqtt 2.x).

The publisher never touches the inspection loop. It tails two tables of the record database, in row-id order, from
its own thread with its own SQLite connection (:mod:`edgead.north.outbox`): the parts and the station events (drift
alarms raised and cleared, written by the daemon). For each it keeps one thing of its own: the id of the last row
the broker acknowledged (:mod:`edgead.north.position`, fsynced at most every ``ack_flush_ms``; the events' beside
the parts' as ``ACK_FILE-events``).

Delivery is **at least once, in order, with an id to de-duplicate on**:

- each part is one QoS 1 message to ``PREFIX/STATION/parts`` (schema ``edgead.part-result/1``, checked before it
  is sent; see :mod:`edgead.north.message`), at most ``max_inflight`` unacknowledged at once;
- each station event is one QoS 1 message to ``PREFIX/STATION/events`` (schema ``edgead.station-event/1``), with
  the same guarantees; events go out before parts waiting behind them;
- the acknowledged position only moves over a contiguous run of acknowledged records, so it never skips a part;
- after a lost connection (broker down, network) or a restart of the publisher (``kill -9`` included), publishing
  resumes after that position, in row-id order. Parts the broker received but whose PUBACK was lost (or whose
  position was not yet flushed) are sent again: the subscriber drops a ``message_id`` it has seen. Nothing recorded
  is ever skipped: exactly-once is not claimed.
- ``PREFIX/STATION/status`` (retained, QoS 1) says ``online`` after each connect; the broker publishes the last
  will ``offline`` (``clean: false``) when the station vanishes, and a clean stop publishes ``offline`` (``clean:
  true``) itself.
- a broker that refuses the credentials (CONNACK failure) puts the publisher in state ``refused``; it retries
  every ``reconnect_max_ms`` and never stops the station. A message the schema refuses (a bug, a damaged record)
  goes to ``PREFIX/STATION/invalid`` with the reason, instead of blocking the parts behind it.

Example:
    >>> with MqttPublisher(MqttConfig(url="mqtt://127.0.0.1:1883"), "line3", "records.sqlite") as pub:  # doctest: +SKIP
    ...     pub.wait_acknowledged(store.last_id(), timeout_s=10)
"""
from __future__ import annotations

import collections
import logging
import ssl
import threading
import time
from enum import Enum
from pathlib import Path

from edgead.errors import EdgeadError, lazy_import
from edgead.north.config import Backlog, MqttConfig
from edgead.north.message import MessageError, encode
from edgead.north.outbox import Outbox
from edgead.records.events import EventTable
from edgead.records.store import RecordStore, utc_iso

log = logging.getLogger(__name__)

STATUS_SCHEMA = "edgead.status/1"
DRAIN_S = 2.0  # on stop: how long to wait for the acknowledgements of messages in flight


class PublisherState(str, Enum):
    """Where the publisher stands (for logs, health and tests)."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"  # connection lost or refused by the network: retrying with backoff
    REFUSED = "refused"  # the broker refused the credentials or the client: retrying every reconnect_max_ms


class _Lost(Exception):
    """The connection ended (or never came up); retry with backoff."""


class _Refused(Exception):
    """The broker answered CONNACK with a failure (bad credentials, not authorised)."""


class MqttPublisher:
    """Publish the parts of a record database to an MQTT broker, from a background thread.

    Args:
        cfg: the ``mqtt`` section (``url`` must be set).
        station: the station's name (topics, message ids).
        database: the record database (the daemon's ``storage.database``).

    Raises:
        MissingExtraError: without paho-mqtt or jsonschema (extra ``mqtt``).
        ConfigError: for a bad URL or an unreadable password file.
    """

    def __init__(self, cfg: MqttConfig, station: str, database: str | Path):
        self._mqtt = lazy_import("paho.mqtt.client", feature="MQTT north")
        self.cfg = cfg
        self.station = station
        self.host, self.port, self.tls = cfg.address()
        self._password = cfg.password()
        self._store = RecordStore(database)
        self.ack_path = cfg.ack_file or Path(database).with_name(Path(database).name + ".mqtt-ack")
        base = f"{cfg.topic_prefix}/{station}"
        self.topics = {"parts": f"{base}/parts", "events": f"{base}/events", "status": f"{base}/status",
                       "invalid": f"{base}/invalid"}
        from_start = cfg.backlog is Backlog.ALL
        self.parts = Outbox.for_parts(self._store, self.topics["parts"], station, self.ack_path, from_start)
        self.events = Outbox.for_events(EventTable(self._store), self.topics["events"], station,
                                        self.ack_path.with_name(self.ack_path.name + "-events"), from_start)
        self.outboxes = (self.events, self.parts)  # events first: an alarm never waits behind a backlog of parts
        self.state = PublisherState.STOPPED
        self.last_error: str | None = None
        self.published = 0  # messages handed to the broker, re-sends included
        self.invalid = 0
        self.connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mqtt-north {self.host}:{self.port}", daemon=True)

    # --- lifetime ---------------------------------------------------------------------------------------------

    def start(self) -> "MqttPublisher":
        """Start the publishing thread; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop: wait briefly for acknowledgements in flight, say ``offline``, store the position (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._store.close()
        self.state = PublisherState.STOPPED

    def __enter__(self) -> "MqttPublisher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def acknowledged_id(self) -> int:
        """The last part record the broker acknowledged (with every one before it)."""
        return self.parts.acknowledged_id

    @property
    def acknowledged(self) -> int:
        """PUBACKs received for parts."""
        return self.parts.acknowledged

    def wait_acknowledged(self, record_id: int, timeout_s: float) -> bool:
        """Wait until every part record up to ``record_id`` is acknowledged by the broker; False on timeout."""
        return self.parts.wait(record_id, timeout_s)

    def wait_events_acknowledged(self, event_id: int, timeout_s: float) -> bool:
        """Wait until every station event up to ``event_id`` is acknowledged by the broker; False on timeout."""
        return self.events.wait(event_id, timeout_s)

    # --- the thread -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.cfg.reconnect_min_ms / 1000
        while not self._stop.is_set():
            wait = backoff
            try:
                if self._session():
                    backoff = self.cfg.reconnect_min_ms / 1000
                    wait = backoff
            except _Refused as exc:
                self.state, self.last_error = PublisherState.REFUSED, str(exc)
                log.error("MQTT broker %s:%d refused the connection: %s (check mqtt.username / mqtt.password_file "
                          "and the broker's ACL); retrying in %.0f s", self.host, self.port, exc,
                          self.cfg.reconnect_max_ms / 1000)
                wait = self.cfg.reconnect_max_ms / 1000
            except (_Lost, EdgeadError) as exc:
                self.state, self.last_error = PublisherState.OFFLINE, str(exc)
                log.warning("MQTT broker %s:%d: %s; retrying in %.1f s (parts stay in the record store)", self.host,
                            self.port, exc, backoff)
            self._flush(force=True)
            backoff = min(2 * backoff, self.cfg.reconnect_max_ms / 1000)
            self._stop.wait(wait)

    def _client(self):
        mqtt = self._mqtt
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.cfg.client_id or f"edgead-{self.station}",
                             protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        if self.cfg.username is not None:
            client.username_pw_set(self.cfg.username, self._password)
        if self.tls:
            client.tls_set(ca_certs=_str(self.cfg.tls_ca_file), certfile=_str(self.cfg.tls_cert_file),
                           keyfile=_str(self.cfg.tls_key_file), cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(self.topics["status"], self._status("offline", clean=False), qos=1, retain=True)
        client.connect_timeout = self.cfg.connect_timeout_s
        client.max_inflight_messages_set(self.cfg.max_inflight + 2)  # we bound it; paho must never queue ours
        return client

    def _status(self, state: str, clean: bool | None = None) -> bytes:
        body = {"schema": STATUS_SCHEMA, "station": self.station, "state": state, "t_utc": utc_iso(time.time_ns())}
        if clean is not None:
            body["clean"] = clean
        return encode(body)

    def _session(self) -> bool:
        """One connection's life. Returns True if it came online (resets the backoff)."""
        self.state = PublisherState.CONNECTING
        client = self._client()
        events: dict = {"connack": None, "lost": None, "acks": collections.deque()}
        client.on_connect = lambda c, u, flags, rc, props: events.__setitem__("connack", rc)
        client.on_disconnect = lambda c, u, flags, rc, props: events.__setitem__("lost", rc)
        client.on_publish = lambda c, u, mid, rc, props: events["acks"].append((mid, rc))
        try:
            client.connect(self.host, self.port, keepalive=self.cfg.keepalive_s, clean_start=True)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise _Lost(f"connect failed: {exc}") from exc
        try:
            deadline = time.monotonic() + self.cfg.connect_timeout_s
            while events["connack"] is None:
                rc = client.loop(0.05)
                if events["connack"] is not None:
                    break  # a refusal comes with the connection's end: the CONNACK says why
                if rc != self._mqtt.MQTT_ERR_SUCCESS or events["lost"] is not None:
                    raise _Lost(f"connection closed before CONNACK ({events['lost']})")
                if time.monotonic() > deadline or self._stop.is_set():
                    raise _Lost(f"no CONNACK within {self.cfg.connect_timeout_s:g} s")
            if events["connack"].is_failure:
                raise _Refused(str(events["connack"]))
            self.connects += 1
            self.state, self.last_error = PublisherState.ONLINE, None
            log.info("MQTT: online at %s:%d, publishing after record %d and event %d", self.host, self.port,
                     self.parts.acknowledged_id, self.events.acknowledged_id)
            client.publish(self.topics["status"], self._status("online"), qos=1, retain=True)
            self._pump(client, events)
            return True
        finally:
            client.disconnect()
            try:
                client.loop(0.05)
            except (OSError, ValueError):
                pass
            sock = client.socket()
            if sock is not None:
                sock.close()

    def _pump(self, client, events: dict) -> None:
        """Publish and collect acknowledgements until the connection is lost or the publisher stops."""
        ok = self._mqtt.MQTT_ERR_SUCCESS
        inflight: dict[int, tuple[Outbox, int]] = {}  # mid -> (outbox, row id); status/invalid messages: absent
        for box in self.outboxes:
            box.restart()
        stop_at, poll_s = None, self.cfg.poll_ms / 1000
        while True:
            now = time.monotonic()
            if self._stop.is_set() and stop_at is None:
                stop_at = now + DRAIN_S
            if stop_at is not None and (not any(box.sent for box in self.outboxes) or now > stop_at):
                info = client.publish(self.topics["status"], self._status("offline", clean=True), qos=1, retain=True)
                info.wait_for_publish(1.0) if info.rc == ok else None
                return
            room = 0
            for box in self.outboxes:
                room = self.cfg.max_inflight - sum(len(b.sent) for b in self.outboxes)
                for row in box.fetch(room, poll_s) if stop_at is None else ():
                    inflight[self._publish(client, box, row)] = (box, row.id)
                    box.sending(row)
            hurry = room > 0 and any(box.last_poll == 0.0 for box in self.outboxes)  # a full read: more are waiting
            if client.loop(0.0 if hurry else poll_s) != ok or events["lost"] is not None:
                raise _Lost(f"connection lost ({events['lost']})")
            while events["acks"]:
                mid, rc = events["acks"].popleft()
                if rc.is_failure:
                    raise _Lost(f"the broker refused a message: {rc}")
                entry = inflight.pop(mid, None)
                if entry is not None:
                    entry[0].acked(entry[1])
            self._flush(force=False)

    def _publish(self, client, box: Outbox, row) -> int:
        message = box.message(row)
        try:
            box.schema.check(message)
            topic, payload = box.topic, encode(message)
        except MessageError as exc:
            self.invalid += 1
            log.error("MQTT: %s row %d not published: %s", box.name, row.id, exc)
            topic, payload = self.topics["invalid"], encode({"message_id": message["message_id"],
                                                             box.id_key: row.id, "error": exc.message})
        info = client.publish(topic, payload, qos=1)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            raise _Lost(f"publish failed: {self._mqtt.error_string(info.rc)}")
        self.published += 1
        return info.mid

    def _flush(self, force: bool) -> None:
        for box in self.outboxes:
            box.flush(force, self.cfg.ack_flush_ms / 1000)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
