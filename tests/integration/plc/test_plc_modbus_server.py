"""Station as Modbus RTU server, polled by mbpoll and by a pymodbus client (the PLC) over a socat pty pair."""
from __future__ import annotations

import re
import subprocess
import time

import pytest
import serial

from edgead.errors import PlcError
from edgead.plc import PartResult, PlcConfig, Protocol, open_plc
from edgead.plc import modbus_rtu as rtu
from edgead.plc.register_map import decode_result
from edgead.verdict import Verdict

CFG = PlcConfig(protocol=Protocol.MODBUS_SERVER, queue_depth=64)


def _mbpoll(mbpoll: str, port: str, *args: str, write: tuple[str, ...] = ()) -> dict[int, int]:
    out = subprocess.run([mbpoll, "-m", "rtu", "-b", "19200", "-P", "none", "-a", "1", "-1", "-o", "2", *args, port,
                          *write],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    return {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", out.stdout, re.M)}


def test_mbpoll_reads_failsafe_then_result(pty_pair, mbpoll):
    with open_plc(pty_pair.station, CFG) as link:
        regs = _mbpoll(mbpoll, pty_pair.plc, "-r", "1", "-c", "9")
        assert regs[1] == 2 and regs[2] == 0  # power-up: verdict reject, ResultValid off
        link.set_status(ready=True, busy=False, fault=False)
        link.send_result(PartResult(17, 5, Verdict.ACCEPT, 0.234))
        regs = _mbpoll(mbpoll, pty_pair.plc, "-r", "1", "-c", "9")
        assert [regs[i] for i in range(1, 8)] == [1, 1, 1, 17, 5, 234, 1]
        coils = _mbpoll(mbpoll, pty_pair.plc, "-t", "0", "-r", "1", "-c", "2")
        assert coils == {1: 1, 2: 1}


def test_mbpoll_reads_input_views_of_the_image(pty_pair, mbpoll):
    """FC04 (input registers, mbpoll -t 3) and FC02 (discrete inputs, -t 1) read the same image as FC03/FC01."""
    with open_plc(pty_pair.station, CFG) as link:
        link.set_status(ready=True, busy=False, fault=False)
        link.send_result(PartResult(21, 6, Verdict.REJECT, 0.75))
        holding = _mbpoll(mbpoll, pty_pair.plc, "-r", "1", "-c", "9")
        assert _mbpoll(mbpoll, pty_pair.plc, "-t", "3", "-r", "1", "-c", "9") == holding
        assert holding[4] == 21
        assert _mbpoll(mbpoll, pty_pair.plc, "-t", "1", "-r", "1", "-c", "2") == \
            _mbpoll(mbpoll, pty_pair.plc, "-t", "0", "-r", "1", "-c", "2")


def test_mbpoll_writes_trigger(pty_pair, mbpoll):
    with open_plc(pty_pair.station, CFG) as link:
        _mbpoll(mbpoll, pty_pair.plc, "-r", "8", write=("42",))
        trigger = link.wait_trigger(3000)
        assert trigger is not None and trigger.part_id == 42
        regs = _mbpoll(mbpoll, pty_pair.plc, "-r", "8", "-c", "2")
        assert regs == {8: 0, 9: 42}  # trigger cleared, acknowledged


def test_mbpoll_write_elsewhere_is_refused(pty_pair, mbpoll):
    with open_plc(pty_pair.station, CFG):
        out = subprocess.run([mbpoll, "-m", "rtu", "-b", "19200", "-P", "none", "-a", "1", "-1", "-o", "2",
                              "-r", "1", pty_pair.plc, "1"], capture_output=True, text=True, timeout=30)
        assert "Illegal data address" in out.stdout + out.stderr


def _client(port: str):
    pymodbus_client = pytest.importorskip("pymodbus.client")
    from pymodbus import FramerType
    client = pymodbus_client.ModbusSerialClient(port, framer=FramerType.RTU, baudrate=19200, parity="N",
                                                stopbits=1, bytesize=8, timeout=1, retries=1)
    assert client.connect()
    return client


def test_pymodbus_plc_burst_of_50_in_order(pty_pair):
    with open_plc(pty_pair.station, CFG) as link:
        client = _client(pty_pair.plc)
        try:
            for part_id in range(1, 51):  # a PLC that does not wait for the ack: 50 triggers queue up
                assert not client.write_register(7, part_id, device_id=1).isError()
            seen = []
            for _ in range(50):
                trigger = link.wait_trigger(3000)
                seen.append(trigger.part_id)
                link.send_result(PartResult(trigger.part_id, len(seen), Verdict.REJECT, 0.8))
            assert seen == list(range(1, 51))
            rr = client.read_holding_registers(0, count=9, device_id=1)
            view = decode_result(dict(enumerate(rr.registers)), {}, CFG.registers)
            assert (view.verdict, view.valid, view.counter, view.part_id, view.seq) == \
                (Verdict.REJECT, True, 50, 50, 50)
            assert rr.registers[8] == 50
        finally:
            client.close()


def test_pymodbus_plc_handshake_per_part(pty_pair):
    with open_plc(pty_pair.station, CFG) as link:
        client = _client(pty_pair.plc)
        try:
            for part_id in (101, 102, 103):
                client.write_register(7, part_id, device_id=1)
                trigger = link.wait_trigger(3000)
                assert client.read_holding_registers(8, count=1, device_id=1).registers == [part_id]
                assert client.read_holding_registers(1, count=1, device_id=1).registers == [0]  # not valid yet
                link.send_result(PartResult(trigger.part_id, part_id, Verdict.ACCEPT, 0.1))
                regs = client.read_holding_registers(0, count=6, device_id=1).registers
                assert regs[0] == 1 and regs[1] == 1 and regs[3] == part_id
        finally:
            client.close()


def test_noise_then_valid_request_is_answered(pty_pair):
    with open_plc(pty_pair.station, CFG) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        link.send_result(PartResult(7, 1, Verdict.ACCEPT, 0.5))
        request = bytes.fromhex("01 03 0000 0006 C5C8")
        assert rtu.encode_request(rtu.read_holding_registers(1, 0, 6)) == request
        peer.write(bytes.fromhex("FF 10 00 13 37 01 10 00") + request)
        buf = b""
        deadline = time.monotonic() + 5
        while len(buf) < 17 and time.monotonic() < deadline:
            buf += peer.read(32)
        used, resp = rtu.decode_response(buf, rtu.read_holding_registers(1, 0, 6))
        assert resp is not None and resp.values == (1, 1, 1, 7, 1, 500)
        assert link.noise_bytes >= 8


def test_endless_noise_is_reported_and_the_server_keeps_serving(pty_pair):
    """More than max_garbage_bytes of noise used to stop the serving thread (and the daemon with it)."""
    cfg = PlcConfig.from_dict({"protocol": "modbus-server", "modbus": {"max_garbage_bytes": 64}})
    request = rtu.encode_request(rtu.read_holding_registers(1, 0, 2))
    with open_plc(pty_pair.station, cfg) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        peer.write(bytes(range(0x80, 0x80 + 100)) * 3)  # 300 bytes, no valid frame
        deadline = time.monotonic() + 10
        while link.line_problem is None and time.monotonic() < deadline:
            assert link.wait_trigger(50) is None  # no PlcError
        assert "without a valid Modbus frame" in link.line_problem
        time.sleep(0.1)  # a silence ends the noise run
        peer.write(request)
        buf = b""
        while len(buf) < 9 and time.monotonic() < deadline:
            buf += peer.read(32)
        assert rtu.decode_response(buf, rtu.read_holding_registers(1, 0, 2))[1].values == (2, 0)
        assert link.line_problem is None


@pytest.mark.timeout(30)
def test_vanished_port_raises(pty_pair):
    with open_plc(pty_pair.station, CFG) as link:
        assert link.wait_trigger(20) is None
        pty_pair.kill()
        with pytest.raises(PlcError, match="station"):
            for _ in range(200):
                link.wait_trigger(50)
