"""Station as Modbus TCP server on 127.0.0.1 (ephemeral port), polled by mbpoll -m tcp, pymodbus TCP clients and
raw sockets sending bad frames."""
from __future__ import annotations

import dataclasses
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from edgead.plc import PartResult, PlcConfig, Protocol, open_plc
from edgead.plc.config import ModbusTcpConfig
from edgead.plc.register_map import decode_result
from edgead.verdict import Verdict

pytestmark = pytest.mark.timeout(120)
CFG = PlcConfig(protocol=Protocol.MODBUS_TCP_SERVER, url="tcp://127.0.0.1:0", queue_depth=64)


@pytest.fixture
def link():
    with open_plc(config=CFG) as server:
        yield server


def _mbpoll(mbpoll: str, port: int, *args: str, write: tuple[str, ...] = (), ok: bool = True) -> tuple[dict, str]:
    out = subprocess.run([mbpoll, "-m", "tcp", "-p", str(port), "-a", "1", "-1", "-o", "2", *args, "127.0.0.1",
                          *write], capture_output=True, text=True, timeout=30)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    values = {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", out.stdout, re.M)}
    return values, out.stdout + out.stderr


def _client(port: int):
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=1)
    assert client.connect()
    return client


def _raw(port: int, frame: bytes, timeout_s: float = 3.0) -> bytes:
    """Send ``frame`` on a fresh connection; what came back before the server answered or closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(frame)
        data = b""
        try:
            while len(data) < 9 or len(data) < 6 + struct.unpack(">H", data[4:6])[0]:
                chunk = sock.recv(260)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        return data


def test_mbpoll_reads_failsafe_result_and_writes_the_trigger(link, mbpoll):
    port = link.address[1]
    regs, _ = _mbpoll(mbpoll, port, "-r", "1", "-c", "9")
    assert regs[1] == 2 and regs[2] == 0 and regs[7] == 0  # power-up: reject, not valid, not ready
    link.set_status(ready=True, busy=False, fault=False)
    _mbpoll(mbpoll, port, "-r", "8", write=("42",))
    trigger = link.wait_trigger(5000)
    assert trigger is not None and trigger.part_id == 42
    regs, _ = _mbpoll(mbpoll, port, "-r", "8", "-c", "2")
    assert regs == {8: 0, 9: 42}  # trigger cleared, acknowledged
    link.send_result(PartResult(42, 5, Verdict.ACCEPT, 0.234))
    regs, _ = _mbpoll(mbpoll, port, "-r", "1", "-c", "7")
    assert [regs[i] for i in range(1, 8)] == [1, 1, 1, 42, 5, 234, 1]
    assert _mbpoll(mbpoll, port, "-t", "0", "-r", "1", "-c", "2")[0] == {1: 1, 2: 1}
    assert _mbpoll(mbpoll, port, "-t", "3", "-r", "1", "-c", "9")[0] == _mbpoll(mbpoll, port, "-r", "1", "-c", "9")[0]


def test_mbpoll_write_to_a_read_only_register_is_refused(link, mbpoll):
    _, out = _mbpoll(mbpoll, link.address[1], "-r", "1", write=("1",), ok=False)
    assert "Illegal data address" in out
    assert link.snapshot()[0][0] == 2  # the verdict register still says reject
    assert link.wait_trigger(50) is None


def test_pymodbus_master_burst_of_50_in_order_with_ack(link):
    client = _client(link.address[1])
    seen, results = [], []

    def station():
        for seq in range(1, 51):
            trigger = link.wait_trigger(5000)
            seen.append(trigger.part_id)
            link.send_result(PartResult(trigger.part_id, seq, Verdict.REJECT if seq % 3 == 0 else Verdict.ACCEPT,
                                        0.1))

    worker = threading.Thread(target=station, daemon=True)
    worker.start()
    try:
        for part_id in range(1, 51):
            assert not client.write_register(7, part_id, device_id=1).isError()
            deadline = time.monotonic() + 10
            while True:  # the PLC program: wait for ResultValid with this id
                regs = client.read_holding_registers(0, count=9, device_id=1).registers
                if regs[1] == 1 and regs[3] == part_id:
                    break
                assert time.monotonic() < deadline, f"no result for {part_id}: {regs}"
                time.sleep(0.002)
            view = decode_result(dict(enumerate(regs)), {}, CFG.registers)
            results.append((view.part_id, view.verdict))
    finally:
        client.close()
        worker.join(10)
    assert seen == list(range(1, 51))
    assert results == [(i, Verdict.REJECT if i % 3 == 0 else Verdict.ACCEPT) for i in range(1, 51)]


def test_several_masters_and_a_bounded_number_of_connections(mbpoll):
    cfg = dataclasses.replace(CFG, modbus_tcp=ModbusTcpConfig(max_connections=2))
    with open_plc(config=cfg) as link:
        port = link.address[1]
        plc, hmi = _client(port), _client(port)
        try:
            assert not plc.write_register(7, 9, device_id=1).isError()
            assert link.wait_trigger(3000).part_id == 9
            assert hmi.read_holding_registers(8, count=1, device_id=1).registers == [9]  # the HMI sees the ack
            _, out = _mbpoll(mbpoll, port, "-r", "1", ok=False)  # a third master: closed at once
            assert "[1]:" not in out
            assert link.connections_refused >= 1 and link.connections == 2
            plc.close()  # a master leaves: its slot frees
            deadline = time.monotonic() + 5
            while link.connections > 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert _mbpoll(mbpoll, port, "-r", "9")[0] == {9: 9}
        finally:
            plc.close()
            hmi.close()


def test_a_master_that_vanishes_mid_frame_and_returns(link):
    port = link.address[1]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(bytes.fromhex("0001 0000 0006 01 06 00"))  # half a trigger write, then the cable is pulled
    sock.close()
    assert link.wait_trigger(100) is None
    client = _client(port)  # the PLC comes back
    try:
        assert not client.write_register(7, 77, device_id=1).isError()
        assert link.wait_trigger(3000).part_id == 77
    finally:
        client.close()


def test_an_illegal_function_gets_exception_01(link):
    reply = _raw(link.address[1], bytes.fromhex("0042 0000 0006 01 08 0000 1234"))  # FC08 diagnostics
    assert reply == bytes.fromhex("0042 0000 0003 01 88 01")
    reply = _raw(link.address[1], bytes.fromhex("0043 0000 0002 01 2b"))  # FC43, no data
    assert reply == bytes.fromhex("0043 0000 0003 01 ab 01")


def test_a_malformed_pdu_gets_exception_03_and_another_unit_exception_0b(link):
    assert _raw(link.address[1], bytes.fromhex("0001 0000 0004 01 03 0000")) == \
        bytes.fromhex("0001 0000 0003 01 83 03")  # FC03 without a count
    assert _raw(link.address[1], bytes.fromhex("0002 0000 0006 07 03 0000 0001")) == \
        bytes.fromhex("0002 0000 0003 07 83 0b")  # unit 7 is not this station


@pytest.mark.parametrize("header", ["0001 0001 0006 01", "0001 0000 0000 01", "0001 0000 ffff 01"],
                         ids=["protocol-id-1", "length-0", "length-65535"])
def test_a_malformed_mbap_header_closes_only_that_connection(link, header):
    port = link.address[1]
    other = _client(port)
    try:
        frame = bytes.fromhex(header) + bytes.fromhex("06 0007 002a")  # would write trigger 42
        assert _raw(port, frame) == b""  # closed without an answer
        assert link.malformed_frames == 1
        assert link.wait_trigger(100) is None  # nothing was queued
        assert other.read_holding_registers(0, count=2, device_id=1).registers == [2, 0]  # the others carry on
        assert link.snapshot()[1][0] == 0  # the pass coil stays off
    finally:
        other.close()


def test_a_busy_port_is_a_plc_error_naming_it(link):
    from edgead.errors import PlcError

    taken = dataclasses.replace(CFG, url=f"tcp://127.0.0.1:{link.address[1]}")
    with pytest.raises(PlcError, match=f"cannot listen on 127.0.0.1:{link.address[1]}"):
        open_plc(config=taken)


def test_close_resets_the_image_and_frees_the_port():
    link = open_plc(config=CFG)
    link.send_result(PartResult(1, 1, Verdict.ACCEPT, 0.1))
    port = link.address[1]
    link.close()
    assert link.snapshot()[0][:2] == (2, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_wait_for_a_trigger_ends_when_woken(link):
    from wakes import assert_woken

    assert_woken(link)
