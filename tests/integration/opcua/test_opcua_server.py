"""The OPC UA server against a real asyncua client on 127.0.0.1: browse, read, subscribe, methods by role, security
(sign and encrypt with a self-signed certificate, anonymous off), refusals, and a daemon thread that never waits."""
from __future__ import annotations

import asyncio
import json
import math
import queue
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from edgead.opcua.address_space import VARIABLES, VisionState, node_id
from edgead.opcua.certs import ensure_certificate
from edgead.opcua.config import AnonymousAccess, OpcUaConfig, SecurityMode, hash_password
from edgead.opcua.audit import Auditor
from edgead.opcua.server import OpcUaServer, RequestKind, ResultInfo
from edgead.records import RecordStore
from edgead.records.audit import audit_rows
from edgead.verdict import Verdict
from modbus_peers import free_port

asyncua = pytest.importorskip("asyncua", reason="asyncua (the [opcua] extra)")
ua = asyncua.ua
pytestmark = pytest.mark.timeout(180)
USERS = {"op": ("operator", "op-pass"), "view": ("viewer", "view-pass")}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    ensure_certificate(folder, "urn:edgead:test-client", ["127.0.0.1"], name="client")
    users = {name: {"role": role, "password": hash_password(pw, iterations=1000)} for name, (role, pw) in USERS.items()}
    (folder / "users.yaml").write_text(yaml.safe_dump(users))
    return folder


@pytest.fixture(scope="module")
def server(pki):
    cfg = OpcUaConfig(listen=f"127.0.0.1:{free_port()}", users_file=pki / "users.yaml", pki_dir=pki / "server",
                      max_message_kb=256, request_queue=4)
    with OpcUaServer(cfg, "line3", model_hash="ab" * 32, model_type="padim") as srv:
        yield srv




async def _connect(server, pki, user: str | None = "op", security: str | None = "Basic256Sha256,SignAndEncrypt"):
    client = asyncua.Client(server.endpoint, timeout=10)
    client.application_uri = "urn:edgead:test-client"
    if security:
        await client.set_security_string(f"{security},{pki / 'client-cert.der'},{pki / 'client-key.pem'}")
    if user:
        client.set_user(user)
        client.set_password(USERS[user][1])
    await client.connect()
    return client


def _run(coro):
    return asyncio.run(coro)


def _node(client, server, path: str):
    return client.get_node(ua.NodeId(node_id(path), server.namespace_index))


def _drain(q: queue.Queue) -> list:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


def test_browse_and_read_the_vision_system(server, pki):
    async def main():
        client = await _connect(server, pki, "view")
        try:
            idx = await client.get_namespace_index("urn:edgead:line3")
            root = await client.nodes.objects.get_child([f"{idx}:VisionSystem"])
            names = {(await c.read_browse_name()).Name for c in await root.get_children()}
            assert {"Identification", "VisionStateMachine", "ConfigurationManagement", "RecipeManagement",
                    "ResultManagement", "Trigger", "SelectRecipe"} <= names
            for spec in VARIABLES:  # every variable of the table is there, under its string node id
                await _node(client, server, spec.path).read_value()
            assert await _node(client, server, "ConfigurationManagement.ModelHash").read_value() == "ab" * 32
            assert await _node(client, server, "Identification.StationName").read_value() == "line3"
        finally:
            await client.disconnect()
    _run(main())


def test_the_station_is_an_opc_40100_vision_system_whose_state_follows_the_station(server, pki):
    async def main():
        client = await _connect(server, pki, "op")
        try:
            mv = await client.get_namespace_index("http://opcfoundation.org/UA/MachineVision")
            idx = server.namespace_index
            instance = client.get_node(ua.NodeId("MachineVision", idx))
            assert (await instance.read_type_definition()) == ua.NodeId(1003, mv)  # VisionSystemType
            assert (await instance.read_display_name()).Text == "line3"
            state = client.get_node(ua.NodeId("MachineVision.VisionStateMachine.CurrentState", idx))
            state_id = client.get_node(ua.NodeId("MachineVision.VisionStateMachine.CurrentState.Id", idx))
            for ours, (name, number) in ((VisionState.ERROR, ("Error", 5030)), (VisionState.BUSY, ("Operational",
                                                                                                   5031))):
                server.set_state(ours)
                deadline = time.monotonic() + 10
                while (await state.read_value()).Text != name:
                    assert time.monotonic() < deadline, name
                    await asyncio.sleep(0.05)
                assert await state_id.read_value() == ua.NodeId(number, mv)
            machine = client.get_node(ua.NodeId("MachineVision.VisionStateMachine", idx))
            with pytest.raises(ua.UaStatusCodeError, match="BadNotSupported"):  # the service manager halts it
                await machine.call_method(ua.NodeId("MachineVision.VisionStateMachine.Halt", idx))
        finally:
            await client.disconnect()
    _run(main())


def test_subscribers_see_every_result_and_the_state(server, pki):
    class Handler:
        def __init__(self):
            self.ids = []

        def datachange_notification(self, node, value, data):
            self.ids.append(value)

    async def main():
        client = await _connect(server, pki, "view")
        try:
            handler = Handler()
            sub = await client.create_subscription(20, handler)
            await sub.subscribe_data_change(_node(client, server, "ResultManagement.LastResult.ResultId"))
            await asyncio.sleep(0.3)
            server.set_state(VisionState.READY)
            for seq, verdict in enumerate([Verdict.ACCEPT, Verdict.REJECT, Verdict.FAULT], start=101):
                server.publish_result(ResultInfo(seq, f"P{seq}", verdict, None if verdict is Verdict.FAULT else 0.7,
                                                 defect_area_px=12.0, recipe="bracket"))
                await asyncio.sleep(0.3)  # a line's pace: one part at a time
            deadline = time.monotonic() + 10
            while 103 not in handler.ids:
                assert time.monotonic() < deadline, handler.ids
                await asyncio.sleep(0.05)
            assert [i for i in handler.ids if i > 100] == [101, 102, 103]
            last = "ResultManagement.LastResult."
            assert await _node(client, server, last + "PartId").read_value() == "P103"
            assert await _node(client, server, last + "Verdict").read_value() == "fault"
            assert math.isnan(await _node(client, server, last + "Score").read_value())
            assert await _node(client, server, last + "Recipe").read_value() == "bracket"
            assert await _node(client, server, "ResultManagement.Counters.Reject").read_value() >= 1
            total = await _node(client, server, "ResultManagement.Counters.Total").read_value()
            assert total == sum(server.counters.values())
            assert await _node(client, server, "VisionStateMachine.CurrentState").read_value() == "Ready"
        finally:
            await client.disconnect()
    _run(main())


def test_an_operator_triggers_and_selects_a_recipe(server, pki):
    _drain(server.requests)

    async def main():
        client = await _connect(server, pki, "op")
        try:
            idx = server.namespace_index
            root = client.get_node(ua.NodeId("VisionSystem", idx))
            assert await root.call_method(ua.NodeId("VisionSystem.Trigger", idx), "P-77") is True
            assert await root.call_method(ua.NodeId("VisionSystem.SelectRecipe", idx), "bracket-b") is True
            with pytest.raises(ua.UaStatusCodeError, match="BadOutOfRange"):  # an oversized argument
                await root.call_method(ua.NodeId("VisionSystem.Trigger", idx), "x" * 10_000)
        finally:
            await client.disconnect()
    _run(main())
    got = _drain(server.requests)
    assert [(r.kind, r.value) for r in got] == [(RequestKind.TRIGGER, "P-77"), (RequestKind.SELECT_RECIPE, "bracket-b")]



def test_an_opcua_trigger_wakes_the_loop_waiting_for_the_plc(server, pki, tmp_path):
    """The station's loop waits for a PLC trigger on a real serial link (a socat pty) for the whole poll; an
    operator's Trigger call over OPC UA wakes that wait, and the loop takes the OPC UA trigger at once."""
    import shutil
    import threading
    from types import SimpleNamespace

    from edgead.daemon.config import StationConfig
    from edgead.daemon.plant import Plant
    from edgead.demo.plc_peer import PtyPair
    from edgead.plc import PlcConfig, Protocol, open_plc

    if not shutil.which("socat"):
        pytest.skip("socat not installed (Debian package socat)")
    _drain(server.requests)
    book = SimpleNamespace(name="", model_hash="ab" * 32, recipes=(), names=(), select=lambda name: None)
    plant = Plant(StationConfig(), book)  # OPC UA off in its config: it is given the test's server
    plant.server = server
    server.on_request = plant._wake
    waits: list[float] = []
    got: list = []
    try:
        with PtyPair(tmp_path) as pair, open_plc(pair.station, PlcConfig(protocol=Protocol.ASCII)) as link:
            real_wait = link.wait_trigger

            def wait(timeout_ms):
                waits.append(timeout_ms)
                return real_wait(timeout_ms)

            link.wait_trigger = wait
            waiting = threading.Thread(target=lambda: got.append(plant.wait_trigger(link, book, 60_000)))
            waiting.start()

            async def main():
                client = await _connect(server, pki, "op")
                try:
                    root = client.get_node(ua.NodeId("VisionSystem", server.namespace_index))
                    assert await root.call_method(ua.NodeId("VisionSystem.Trigger", server.namespace_index),
                                                  "P-91") is True
                finally:
                    await client.disconnect()
            _run(main())
            waiting.join(30)  # woken: the loop does not sit out the minute it waits for the PLC
            assert not waiting.is_alive()
    finally:
        server.on_request = None
    assert got[0] is not None and (got[0].part_id, got[0].requested_by) == ("P-91", "op")
    assert waits and waits[0] > 1000  # the PLC was waited on for the whole poll, not in 20 ms slices

def test_a_viewer_may_not_call_and_nobody_may_write(server, pki):
    _drain(server.requests)

    async def main():
        client = await _connect(server, pki, "view")
        try:
            root = client.get_node(ua.NodeId("VisionSystem", server.namespace_index))
            with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
                await root.call_method(ua.NodeId("VisionSystem.Trigger", server.namespace_index), "P1")
        finally:
            await client.disconnect()
        client = await _connect(server, pki, "op")
        try:
            verdict = _node(client, server, "ResultManagement.LastResult.Verdict")
            with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
                await verdict.write_value(ua.Variant("accept", ua.VariantType.String))
        finally:
            await client.disconnect()
    _run(main())
    assert _drain(server.requests) == []


def test_an_oversized_write_is_refused_and_the_server_carries_on(server, pki):
    async def main():
        client = await _connect(server, pki, "op")
        try:
            verdict = _node(client, server, "ResultManagement.LastResult.Verdict")
            with pytest.raises(Exception):  # 2 MB > max_message_kb: refused, the connection is closed
                await verdict.write_value(ua.Variant("A" * 2_000_000, ua.VariantType.String))
        finally:
            try:
                await client.disconnect()
            except Exception:
                pass
        client = await _connect(server, pki, "view")
        try:
            assert await _node(client, server, "ResultManagement.LastResult.Verdict").read_value() != "A"
        finally:
            await client.disconnect()
    _run(main())


@pytest.mark.parametrize("user,security,why", [
    (None, "Basic256Sha256,SignAndEncrypt", "BadUserAccessDenied"),  # anonymous is off (and on the audit trail)
    ("op", None, "No matching endpoints"),  # no security: the only endpoint signs and encrypts
])
def test_refused_without_credentials_or_without_encryption(server, pki, user, security, why):
    async def main():
        with pytest.raises(Exception) as info:
            client = await _connect(server, pki, user, security)
            await client.disconnect()
        return info.value
    assert why in str(_run(main()))


def test_a_wrong_password_is_refused(server, pki):
    async def main():
        client = asyncua.Client(server.endpoint, timeout=10)
        client.application_uri = "urn:edgead:test-client"
        await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{pki / 'client-cert.der'},"
                                         f"{pki / 'client-key.pem'}")
        client.set_user("op")
        client.set_password("wrong")
        with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
            await client.connect()
    _run(main())


def test_the_daemon_side_never_waits_and_a_full_queue_refuses(server, pki):
    t0 = time.perf_counter()
    for seq in range(10_000):  # far more than the server can show: it keeps the newest, the caller never waits
        server.publish_result(ResultInfo(seq, str(seq), Verdict.ACCEPT, 0.1))
    assert time.perf_counter() - t0 < 5  # generous: a blocking call would take minutes
    _drain(server.requests)

    async def main():
        client = await _connect(server, pki, "op")
        try:
            root = client.get_node(ua.NodeId("VisionSystem", server.namespace_index))
            trigger = ua.NodeId("VisionSystem.Trigger", server.namespace_index)
            for i in range(4):
                assert await root.call_method(trigger, f"Q{i}") is True
            with pytest.raises(ua.UaStatusCodeError, match="BadTooManyOperations"):
                await root.call_method(trigger, "Q4")
        finally:
            await client.disconnect()
    _run(main())
    assert [r.value for r in _drain(server.requests)] == ["Q0", "Q1", "Q2", "Q3"]


def test_the_self_signed_certificate_is_kept_and_an_anonymous_viewer_can_be_allowed(pki, tmp_path):
    from cryptography import x509

    cfg = OpcUaConfig(listen=f"127.0.0.1:{free_port()}", pki_dir=tmp_path / "pki", anonymous=AnonymousAccess.VIEWER,
                      security=SecurityMode.SIGN_AND_ENCRYPT)
    with OpcUaServer(cfg, "line4") as srv:
        cert = x509.load_der_x509_certificate(srv.certificate_file.read_bytes())
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "urn:edgead:line4" in uris.get_values_for_type(x509.UniformResourceIdentifier)
        assert oct(srv.private_key_file.stat().st_mode & 0o777) == "0o600"

        async def main():
            client = await _connect(srv, pki, None)
            try:
                assert await _node(client, srv, "Identification.StationName").read_value() == "line4"
                root = client.get_node(ua.NodeId("VisionSystem", srv.namespace_index))
                with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
                    await root.call_method(ua.NodeId("VisionSystem.Trigger", srv.namespace_index), "P1")
            finally:
                await client.disconnect()
        _run(main())
    first = cert.fingerprint(cert.signature_hash_algorithm)
    again = OpcUaServer(cfg, "line4")  # the next start keeps the certificate clients trusted
    assert x509.load_der_x509_certificate(again.certificate_file.read_bytes()).fingerprint(
        cert.signature_hash_algorithm) == first


def test_a_client_certificate_trust_list_admits_only_trusted_applications(pki, tmp_path):
    import shutil

    from edgead.errors import ConfigError

    trusted = tmp_path / "trusted"
    trusted.mkdir()
    with pytest.raises(ConfigError, match="holds no .der or .pem certificate"):
        OpcUaConfig(listen="127.0.0.1:0", trusted_clients_dir=trusted).check_files()
    shutil.copy(pki / "client-cert.der", trusted / "test-client.der")  # the known client's own certificate
    stranger = tmp_path / "stranger"
    ensure_certificate(stranger, "urn:edgead:test-client", ["127.0.0.1"], name="client")  # same URI, other key
    cfg = OpcUaConfig(listen=f"127.0.0.1:{free_port()}", users_file=pki / "users.yaml", pki_dir=tmp_path / "server",
                      trusted_clients_dir=trusted)
    cfg.check_files()
    with OpcUaServer(cfg, "line5") as srv:
        async def main():
            client = await _connect(srv, pki, "view")  # trusted certificate, right password
            try:
                assert await _node(client, srv, "Identification.StationName").read_value() == "line5"
            finally:
                await client.disconnect()
            with pytest.raises(Exception) as info:  # right user and password, untrusted application certificate
                await _connect(srv, stranger, "view")
            assert "BadCertificateUntrusted" in repr(info.value) or "BadSecurityChecksFailed" in repr(info.value)
        _run(main())

        async def stranger_admitted() -> bool:
            try:
                await (await _connect(srv, stranger, "view")).disconnect()
            except Exception:  # noqa: BLE001 -- refused
                return False
            return True

        shutil.copy(stranger / "client-cert.der", trusted / "stranger.der")
        assert not _run(stranger_admitted())  # the folder is read at start, and on reload_trust (SIGHUP)
        assert srv.reload_trust() is True and srv.trust.count == 2
        assert _run(stranger_admitted())
        (trusted / "broken.pem").write_text("not a certificate")
        (trusted / "stranger.der").unlink()
        assert srv.reload_trust() is False  # a certificate that does not load: the list in force stays
        assert _run(stranger_admitted()) and srv.trust.count == 2


def test_a_user_logs_in_with_an_x509_user_certificate_and_an_unknown_one_is_refused(pki, tmp_path):
    from edgead.errors import ConfigError

    cert_user = tmp_path / "users"
    user_cert, user_key = ensure_certificate(cert_user, "urn:edgead:op2", ["127.0.0.1"], name="op2")
    stranger_cert, stranger_key = ensure_certificate(tmp_path / "other", "urn:edgead:op3", ["127.0.0.1"], name="op3")
    users = yaml.safe_load((pki / "users.yaml").read_text())
    users["op2"] = {"role": "operator", "certificate": str(user_cert.relative_to(tmp_path))}
    (tmp_path / "users.yaml").write_text(yaml.safe_dump(users))
    cfg = OpcUaConfig(listen=f"127.0.0.1:{free_port()}", users_file=tmp_path / "users.yaml",
                      pki_dir=tmp_path / "server")
    assert cfg.users()["op2"][1].startswith("x509_sha256$")
    db = tmp_path / "records.sqlite"
    for bad, needle in (({"role": "operator", "certificate": "nope.der"}, "nope.der: No such file"),
                        ({"role": "operator", "certificate": "users.yaml"}, "neither a DER nor a PEM"),
                        ({"role": "operator", "certificate": "x", "password": "y"}, "exactly role and password")):
        (tmp_path / "bad-users.yaml").write_text(yaml.safe_dump({"op9": bad}))
        with pytest.raises(ConfigError, match=needle):
            OpcUaConfig(listen="127.0.0.1:0", users_file=tmp_path / "bad-users.yaml").check_files()
    with OpcUaServer(cfg, "line6", auditor=Auditor(db)) as srv:
        async def login(cert: Path, key: Path):
            client = asyncua.Client(srv.endpoint, timeout=10)
            client.application_uri = "urn:edgead:test-client"
            await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{pki / 'client-cert.der'},"
                                             f"{pki / 'client-key.pem'}")
            await client.load_client_certificate(str(cert))
            await client.load_private_key(key)
            await client.connect()
            return client

        async def main():
            client = await login(user_cert, user_key)  # an operator by certificate: may call the methods
            try:
                root = client.get_node(ua.NodeId("VisionSystem", srv.namespace_index))
                assert await root.call_method(ua.NodeId("VisionSystem.SetLotId", srv.namespace_index), "L9") is True
            finally:
                await client.disconnect()
            with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
                await login(stranger_cert, stranger_key)  # a valid certificate, but no user of this station
            with pytest.raises(Exception):  # the user's certificate without its key: the token cannot be signed
                await login(user_cert, stranger_key)
        _run(main())
    assert [(r.kind, r.value, r.user) for r in _drain(srv.requests)] == [(RequestKind.SET_LOT, "L9", "op2")]
    with RecordStore(db) as store:  # the audit trail names the certificate user by name and subject
        rows = [(a.who, a.role, a.login, a.action.value, a.status) for a in audit_rows(store)]
    assert rows[0] == ("op2", "operator", f"x509 O=edgead,CN=edgead {socket.gethostname()}", "call", "Good")
    assert rows[1][0] == "?" and rows[1][2].startswith("x509 O=edgead,CN=") and rows[1][3:] == ("login", "BadUserAccessDenied")


def test_a_request_whose_audit_row_cannot_be_written_is_refused_not_carried_out(pki, tmp_path):
    db = tmp_path / "records.sqlite"
    RecordStore(db).close()
    cfg = OpcUaConfig(listen=f"127.0.0.1:{free_port()}", users_file=pki / "users.yaml", pki_dir=tmp_path / "server")
    with OpcUaServer(cfg, "line8", auditor=Auditor(db)) as srv:
        async def call(client, part_id):
            root = client.get_node(ua.NodeId("VisionSystem", srv.namespace_index))
            return await root.call_method(ua.NodeId("VisionSystem.Trigger", srv.namespace_index), part_id)

        async def main():
            client = await _connect(srv, pki, "op")
            try:
                blocker = sqlite3.connect(db, isolation_level=None)
                blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the audit's busy timeout
                try:
                    with pytest.raises(ua.UaStatusCodeError, match="BadResourceUnavailable"):
                        await call(client, "P1")
                finally:
                    blocker.execute("ROLLBACK")
                    blocker.close()
                assert await call(client, "P2") is True
            finally:
                await client.disconnect()
        _run(main())
        assert [r.value for r in _drain(srv.requests)] == ["P2"]  # P1 was not carried out
        assert srv.auditor.failures == 1
    with RecordStore(db) as store:
        assert [(a.who, json.loads(a.arguments), a.status) for a in audit_rows(store)] == \
            [("op", {"PartId": "P2"}, "Good")]


def test_a_viewer_gets_drift_events_and_the_drift_state(server, pki):
    """Two alarms raised, one cleared: each a DriftAlarmEventType event from VisionSystem with its fields (a value the
    station had none for is NaN), and DriftMonitoring follows the signals still in alarm."""
    from edgead.records.events import EventKind, EventState, StationEvent

    def event(metric: str, state: EventState, value: float | None, t: int) -> StationEvent:
        return StationEvent(1_795_000_000_000_000_000 + t, "line3", EventKind.DRIFT, state, metric, value, 0.15,
                            20 if state is EventState.RAISED else 0, f"drift {state.value} ({metric})",
                            {"recipe": "housing-a"})

    async def main():
        client = await _connect(server, pki, "view")
        got: list = []

        class Handler:
            def event_notification(self, e):
                got.append(e)

        try:
            sub = await client.create_subscription(20, Handler())
            await sub.subscribe_events(_node(client, server, ""), _node(client, server, "DriftAlarmEventType"))
            server.publish_event(event("brightness", EventState.RAISED, -0.3, 0))
            server.publish_event(event("contrast", EventState.RAISED, -0.4, 1))
            server.publish_event(event("brightness", EventState.CLEARED, None, 2))
            deadline = time.monotonic() + 30
            while len(got) < 3:
                assert time.monotonic() < deadline, f"{len(got)} of 3 drift events arrived"
                await asyncio.sleep(0.05)
            assert [(e.Metric, e.State, e.Severity, e.WindowParts, e.Recipe) for e in got] == [
                ("brightness", "raised", 700, 20, "housing-a"), ("contrast", "raised", 700, 20, "housing-a"),
                ("brightness", "cleared", 100, 0, "housing-a")]
            assert got[0].Value == -0.3 and got[0].Bound == 0.15 and math.isnan(got[2].Value)
            assert got[2].Message.Text == "drift cleared (brightness)" and got[0].SourceName == "VisionSystem"
            assert got[1].Time.timestamp() == pytest.approx(1_795_000_000.0)
            assert await _node(client, server, "DriftMonitoring.Alarm").read_value() is True
            assert await _node(client, server, "DriftMonitoring.ActiveSignals").read_value() == "contrast"
            assert await _node(client, server, "DriftMonitoring.LastMessage").read_value() == \
                "drift cleared (brightness)"
        finally:
            await client.disconnect()
    _run(main())
