"""A running daemon (``python -m edgead run``) with two recipes, its OPC UA server and a Modbus TCP PLC link, against
a real asyncua client and a pymodbus TCP client on 127.0.0.1: OPC UA triggers and lot/recipe selection reach the
loop, PLC registers select recipe and lot, every result shows in the address space, an unknown recipe is refused
(OPC UA) or answered fail-safe and recorded (PLC), the vision state follows the station's health, bad input does
not stop the daemon, and every part is on record with its recipe and lot."""
from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edgead.plc.register_map import encode_text
from edgead.opcua.access import _subject
from edgead.opcua.certs import ensure_certificate
from edgead.records import RecordStore
from edgead.records.audit import audit_rows
from daemon_process import running_daemon, wait_ready  # tests/helpers
from opcua_peers import OpcUaStation, opcua_section  # tests/helpers
from modbus_peers import free_port

asyncua = pytest.importorskip("asyncua", reason="asyncua (the [opcua] extra)")
pytest.importorskip("pymodbus", reason="pymodbus plays the PLC")
ua = asyncua.ua
pytestmark = pytest.mark.timeout(300)
RECIPE_REGISTER, LOT_REGISTER, TRIGGER_REGISTER = 9, 10, 7


def _config(tmp_path: Path, small_station, padim_bundle, security: dict, opc_port: int, plc_port: int,
            **opcua) -> Path:
    bundle = str(padim_bundle.bundle.root)
    cfg = {"name": "line7",
           "camera": {"url": f"folder://{small_station.captures}?fps=0&loop=1"},
           "reference": str(small_station.reference), "model": {"bundle": bundle, "warmup_runs": 0},
           "recipes": [{"name": "housing-a"},  # number 1: the station's own model and reference
                       {"name": "housing-b", "number": 2, "model": {"bundle": bundle, "warmup_runs": 1},
                        "decision": {"min_defect_area_px": 4}}],
           "plc": {"url": f"tcp://127.0.0.1:{plc_port}", "protocol": "modbus-tcp-server",
                   "registers": {"recipe_register": RECIPE_REGISTER, "lot_id_register": LOT_REGISTER,
                                 "lot_id_chars": 8}},
           "opcua": {**opcua_section(tmp_path, opc_port), **opcua},
           "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "images")},
           "observe": {"metrics_listen": None, "log_level": "warning"},
           "security": security}  # every recipe's bundle is admitted by the station's trusted keys
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_opcua_and_plc_drive_a_running_daemon_with_recipes_and_lots(small_station, padim_bundle, bundle_key,
                                                                      tmp_path):
    from pymodbus.client import ModbusTcpClient

    opc_port, plc_port = free_port(), free_port()
    path = _config(tmp_path, small_station, padim_bundle, bundle_key.security, opc_port, plc_port)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "edgead", "run", str(path)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    station = OpcUaStation(f"opc.tcp://127.0.0.1:{opc_port}/edgead", tmp_path / "pki", "line7")
    plc = ModbusTcpClient("127.0.0.1", port=plc_port, timeout=5, retries=1)
    try:
        wait_ready(sock, proc)
        assert plc.connect()

        def plc_part(part_id: int, recipe: int, lot: str) -> list[int]:
            plc.write_register(RECIPE_REGISTER, recipe, device_id=1)  # recipe and lot before the trigger
            plc.write_registers(LOT_REGISTER, encode_text(lot, 4), device_id=1)
            plc.write_register(TRIGGER_REGISTER, part_id, device_id=1)
            deadline = time.monotonic() + 60
            while True:
                regs = plc.read_holding_registers(0, count=9, device_id=1).registers
                if regs[1] == 1 and regs[3] == part_id:
                    return regs
                assert time.monotonic() < deadline, f"no result for PLC part {part_id}: {regs}"
                time.sleep(0.01)

        async def main():
            client = await station.connect("op")
            try:
                class Handler:
                    ids: list = []

                    def datachange_notification(self, node, value, data):
                        self.ids.append(value)

                handler = Handler()
                sub = await client.create_subscription(20, handler)
                await sub.subscribe_data_change(station.node(client, "ResultManagement.LastResult.ResultId"))
                assert await station.node(client, "RecipeManagement.ActiveRecipe").read_value() == "housing-a"
                assert await station.node(client, "RecipeManagement.Recipes").read_value() == \
                    "1 housing-a, 2 housing-b"
                assert await station.node(client, "VisionStateMachine.CurrentState").read_value() == "Ready"
                assert len(await station.node(client, "ConfigurationManagement.ModelHash").read_value()) == 64

                # OPC UA: a lot, a trigger; then another recipe and a trigger
                assert await station.call(client, "SetLotId", "LOT-1") is True
                assert await station.call(client, "Trigger", "P1") is True
                r1 = await station.result(client, "P1")
                assert (r1["Recipe"], r1["LotId"]) == ("housing-a", "LOT-1") and r1["Verdict"] != "fault"
                assert await station.call(client, "SelectRecipe", "housing-b") is True
                assert await station.call(client, "Trigger", "P2") is True
                r2 = await station.result(client, "P2")
                assert (r2["Recipe"], r2["LotId"]) == ("housing-b", "LOT-1") and r2["ResultId"] > r1["ResultId"]
                assert await station.node(client, "RecipeManagement.ActiveRecipe").read_value() == "housing-b"

                # bad input from the OPC UA side: refused, the daemon carries on
                with pytest.raises(ua.UaStatusCodeError, match="BadInvalidArgument"):
                    await station.call(client, "SelectRecipe", "housing-z")
                with pytest.raises(ua.UaStatusCodeError, match="BadOutOfRange"):
                    await station.call(client, "Trigger", "x" * 10_000)
                with pytest.raises(ua.UaStatusCodeError, match="BadOutOfRange"):
                    await station.call(client, "SetLotId", "bad\x00lot")
                with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):  # no variable is writable
                    await station.node(client, "RecipeManagement.LotId").write_value("LOT-X")
                machine = client.get_node(ua.NodeId("MachineVision.VisionStateMachine", station.idx))
                with pytest.raises(ua.UaStatusCodeError, match="BadNotSupported"):  # OPC 40100's Halt: not here
                    await machine.call_method(ua.NodeId("MachineVision.VisionStateMachine.Halt", station.idx))

                # the PLC selects recipe 1 and lot LOT-2 with its trigger; then an unknown recipe: fail-safe
                regs = await asyncio.to_thread(plc_part, 3, 1, "LOT-2")
                assert regs[0] in (1, 2, 3)  # a verdict of the rule (accept, reject or no-read)
                r3 = await station.result(client, "3")
                assert (r3["Recipe"], r3["LotId"]) == ("housing-a", "LOT-2")
                regs = await asyncio.to_thread(plc_part, 4, 9, "LOT-2")
                assert regs[0] == 2  # plc.failsafe_verdict: reject
                r4 = await station.result(client, "4")
                assert r4["Verdict"] == "fault" and r4["Recipe"] == "9"
                assert await station.node(client, "RecipeManagement.ActiveRecipe").read_value() == "housing-a"
                state = station.node(client, "VisionStateMachine.CurrentState")
                for part_id in (5, 6):  # three faults in a row (runtime.degraded_after_faults): the station errs
                    await asyncio.to_thread(plc_part, part_id, 9, "LOT-2")
                await station.result(client, "6")
                assert await state.read_value() == "Error"
                await asyncio.to_thread(plc_part, 7, 0, "LOT-2")  # recipe 0: keep housing-a; a judged part
                await station.result(client, "7")
                assert await state.read_value() == "Ready"
                await asyncio.sleep(0.5)
                assert len(set(handler.ids)) >= 4  # a subscriber to ResultId saw the results come
            finally:
                await client.disconnect()

            viewer = await station.connect("view")
            try:
                with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
                    await station.call(viewer, "Trigger", "P9")
            finally:
                await viewer.disconnect()
            with pytest.raises(Exception):  # anonymous is off
                await station.connect(None)

        asyncio.run(main())
        assert proc.poll() is None, "the daemon stopped"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.stderr.read()[-3000:]
        log_text = proc.stderr.read()
    finally:
        plc.close()
        sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = {r.part_id: r for r in store.query()}
    assert set(rows) == {"P1", "P2", "3", "4", "5", "6", "7"}
    assert (rows["7"].recipe, rows["7"].lot_id) == ("housing-a", "LOT-2") and rows["7"].verdict.value != "fault"
    assert [(rows[p].recipe, rows[p].lot_id) for p in ("P1", "P2", "3")] == \
        [("housing-a", "LOT-1"), ("housing-b", "LOT-1"), ("housing-a", "LOT-2")]
    assert rows["4"].verdict.value == "fault" and rows["4"].plc_answer == "reject"
    assert rows["4"].recipe == "9" and "recipe" in rows["4"].error and "housing-b" in rows["4"].error
    assert [rows[p].requested_by for p in ("P1", "P2", "3")] == ["op", "op", None]  # OPC UA's caller; the PLC's

    # every call and write is on record with its caller and answer, refusals too (and in the log)
    with RecordStore(tmp_path / "records.sqlite") as store:
        audit = audit_rows(store)
    client_subject = _subject((tmp_path / "pki" / "client-cert.der").read_bytes())
    calls = [(a.who, a.role, a.login, a.action.value, a.target, json.loads(a.arguments), a.status) for a in audit]
    op = ("op", "operator", "password")
    assert calls[:6] == [(*op, "call", "SetLotId", {"LotId": "LOT-1"}, "Good"),
                         (*op, "call", "Trigger", {"PartId": "P1"}, "Good"),
                         (*op, "call", "SelectRecipe", {"RecipeId": "housing-b"}, "Good"),
                         (*op, "call", "Trigger", {"PartId": "P2"}, "Good"),
                         (*op, "call", "SelectRecipe", {"RecipeId": "housing-z"}, "BadInvalidArgument"),
                         (*op, "call", "Trigger", {"PartId": "x" * 80 + "...(10000 chars)"}, "BadOutOfRange")]
    assert calls[6:8] == [(*op, "call", "SetLotId", {"LotId": "bad\x00lot"}, "BadOutOfRange"),
                          (*op, "write", "RecipeManagement.LotId", {"attribute": "Value", "value": "LOT-X"},
                           "BadUserAccessDenied")]
    assert calls[8:10] == [(*op, "call", "MachineVision.VisionStateMachine.Halt", {}, "BadNotSupported"),
                           ("view", "viewer", "password", "call", "Trigger", {"PartId": "P9"}, "BadUserAccessDenied")]
    assert calls[10][:4] + calls[10][6:] == ("anonymous", "", "anonymous", "login", "BadUserAccessDenied")
    assert len(calls) == 11 and {a.client for a in audit} == {client_subject} and "CN=" in client_subject
    assert "OPC UA audit: " in log_text and "view [viewer, password] call Trigger" in log_text


def test_sighup_reloads_the_client_trust_list_without_a_restart(small_station, padim_bundle, bundle_key, tmp_path):
    """A newly trusted client connects after a SIGHUP, a removed or revoked one is refused from its next connection
    on; an empty trust folder on reload keeps the list in force."""
    import shutil

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    trusted, crls = tmp_path / "trusted", tmp_path / "crl"
    trusted.mkdir()
    crls.mkdir()
    opc_port = free_port()
    path = _config(tmp_path, small_station, padim_bundle, bundle_key.security, opc_port, free_port(),
                   trusted_clients_dir=str(trusted), client_crl_dir=str(crls))
    shutil.copy(tmp_path / "pki" / "client-cert.der", trusted / "a.der")  # client A: trusted from the start
    b_dir = tmp_path / "client-b"
    b_cert, b_key = ensure_certificate(b_dir, "urn:edgead:test-client", ["127.0.0.1"], name="client")
    endpoint = f"opc.tcp://127.0.0.1:{opc_port}/edgead"
    a, b = OpcUaStation(endpoint, tmp_path / "pki", "line7"), OpcUaStation(endpoint, b_dir, "line7")

    async def admitted(station: OpcUaStation) -> bool:
        try:
            client = await station.connect("view")
        except Exception:  # noqa: BLE001 -- BadCertificateUntrusted / BadSecurityChecksFailed, or a closed socket
            return False
        await client.disconnect()
        return True

    def logins() -> tuple[bool, bool]:
        async def both():
            return await admitted(a), await admitted(b)
        return asyncio.run(both())

    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)

    def reload(proc):
        proc.send_signal(signal.SIGHUP)
        wait_ready(sock, proc)  # RELOADING=1, then READY=1 once the reload is done

    try:
        with running_daemon(path, sock, sock_path) as proc:
            assert logins() == (True, False)
            shutil.copy(b_cert, trusted / "b.der")
            reload(proc)
            assert logins() == (True, True)  # B is trusted now, without a restart
            (trusted / "a.der").unlink()
            reload(proc)
            assert logins() == (False, True)  # A is refused on its next connection
            (trusted / "b.der").rename(tmp_path / "b.der")  # an empty folder: the reload is refused, the list stays
            reload(proc)
            assert logins() == (False, True)
            shutil.copy(tmp_path / "b.der", trusted / "b.der")
            key = serialization.load_pem_private_key(b_key.read_bytes(), None)
            cert = x509.load_der_x509_certificate(b_cert.read_bytes())
            now = datetime.datetime.now(datetime.timezone.utc)
            revoked = x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build()
            crl = (x509.CertificateRevocationListBuilder().issuer_name(cert.subject).last_update(now)
                   .next_update(now + datetime.timedelta(days=1)).add_revoked_certificate(revoked)
                   .sign(key, hashes.SHA256()))
            (crls / "b.crl.der").write_bytes(crl.public_bytes(serialization.Encoding.DER))
            reload(proc)
            assert logins() == (False, False)  # B's certificate is revoked
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
            log_text = proc.stderr.read()
    finally:
        sock.close()
    assert "reload failed, keeping the running model and config: opcua.trusted_clients_dir" in log_text
    assert "holds no .der or .pem certificate" in log_text
