"""MQTT peers for the tests (imported by name): a real mosquitto on 127.0.0.1 (ephemeral port), a subscriber, test
certificates."""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from modbus_peers import free_port, wait_listening

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


class Mosquitto:
    """mosquitto with a generated config: loopback listener, password file, persistence (so a subscriber's session
    survives a broker restart), optionally TLS. ``stop()`` is a graceful SIGTERM (it saves its state)."""

    def __init__(self, workdir: Path, users: dict[str, str] | None = None, tls: tuple[Path, Path] | None = None):
        self.dir = workdir / f"mosquitto-{time.monotonic_ns()}"
        self.dir.mkdir()
        self.port = free_port()
        lines = [f"listener {self.port} 127.0.0.1", "per_listener_settings false",
                 f"allow_anonymous {'false' if users else 'true'}", "persistence true",
                 f"persistence_location {self.dir}/", f"log_dest file {self.dir}/mosquitto.log",
                 "log_type error", "log_type warning", "log_type notice", "log_type information"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to the user 'mosquitto', which cannot read the temp dir
        if users:
            passwd = self.dir / "passwd"
            for i, (user, password) in enumerate(users.items()):
                subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + [str(passwd), user, password],
                               check=True, capture_output=True)
            lines.append(f"password_file {passwd}")
        if tls:
            cert, key = tls
            lines += [f"certfile {cert}", f"keyfile {key}"]
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            wait_listening(self.port)
        except OSError:
            self.stop()
            pytest.fail(f"mosquitto did not start: {self.log()}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text() if path.exists() else ""

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@contextlib.contextmanager
def north_sidecar(config: Path) -> Iterator[subprocess.Popen]:
    """``python -m edgead.north CONFIG`` (stderr piped), stopped with SIGTERM at the end; its exit code is then in
    ``returncode``."""
    proc = subprocess.Popen([sys.executable, "-m", "edgead.north", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stderr.close()


class Subscriber:
    """A paho subscriber with a persistent session (QoS 1), recording every message it gets, in order."""

    def __init__(self, port: int, topic: str, username: str | None = None, password: str | None = None,
                 tls_ca: Path | None = None):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict, bool]] = []  # (topic, payload, retained)
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.reconnect_delay_set(0.05, 0.5)
        self.subscribed = threading.Event()
        from paho.mqtt.properties import Properties
        from paho.mqtt.packettypes import PacketTypes

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600

        def on_connect(client, userdata, flags, rc, properties):
            client.subscribe(topic, qos=1)

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=5, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the subscriber did not subscribe"

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))

    def parts(self) -> list[dict]:
        with self._lock:
            return [m for t, m, _ in self.messages if t.endswith("/parts")]

    def on(self, suffix: str) -> list[dict]:
        with self._lock:
            return [m for t, m, _ in self.messages if t.endswith(suffix)]

    def wait_parts(self, n_unique: int, timeout_s: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len({m["message_id"] for m in self.parts()}) < n_unique:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len({m['message_id'] for m in self.parts()})} of {n_unique} parts arrived")
            time.sleep(0.02)
        return self.parts()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgead test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths
