"""Station as Modbus TCP client against a pymodbus TCP server playing the PLC on 127.0.0.1, including a PLC that
vanishes and returns on the same port."""
from __future__ import annotations

import dataclasses
import time

import pytest

from edgead.errors import PlcError
from edgead.plc import PartResult, PlcConfig, Protocol, open_plc
from edgead.plc.config import ModbusConfig, ModbusTcpConfig, RegisterMapConfig
from edgead.plc.register_map import decode_result
from edgead.verdict import Verdict
from modbus_peers import PymodbusPlc, burst_with_ack, free_port

pytest.importorskip("pymodbus", reason="pymodbus (the [modbus] extra) plays the PLC in these tests")
pytestmark = pytest.mark.timeout(120)


def _cfg(port: int, **tcp) -> PlcConfig:
    return PlcConfig(protocol=Protocol.MODBUS_TCP_CLIENT, url=f"tcp://127.0.0.1:{port}",
                     modbus=ModbusConfig(reply_timeout_ms=500, retries=1),
                     modbus_tcp=ModbusTcpConfig(reconnect_min_ms=50, reconnect_max_ms=400, **tcp))


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def plc(port):
    peer = PymodbusPlc(tcp_port=port)
    yield peer
    peer.close()


def test_failsafe_on_open_handshake_and_heartbeat(port, plc):
    with open_plc(config=_cfg(port)) as link:
        assert plc.regs[0] == 2 and plc.regs[1] == 0 and plc.coil(0) == 0
        assert link.wait_trigger(30) is None
        link.set_status(ready=True, busy=False, fault=False)
        for n, (part_id, verdict) in enumerate([(501, Verdict.ACCEPT), (502, Verdict.REJECT)], start=1):
            plc.regs[7] = part_id
            trigger = link.wait_trigger(3000)
            assert trigger.part_id == part_id
            assert plc.regs[7] == 0 and plc.regs[8] == part_id and plc.regs[1] == 0
            link.send_result(PartResult(part_id, n, verdict, 0.3))
            view = decode_result(dict(enumerate(plc.regs)), {}, link._map)
            assert (view.verdict, view.valid, view.part_id, view.counter) == (verdict, True, part_id, n)
            assert plc.coil(0) == int(verdict is Verdict.ACCEPT) and plc.coil(1) == 1
        link.heartbeat()
        assert plc.regs[6] == 0b1001
    assert plc.regs[0] == 2 and plc.coil(0) == 0  # close: fail-safe image again


def test_burst_of_50_with_a_plc_that_waits_for_ack(port, plc):
    with open_plc(config=_cfg(port)) as link:
        seen = burst_with_ack(link, plc)
    assert seen == list(range(1, 51))
    assert plc.results == [(i, i) for i in range(1, 51)]


def test_a_plc_that_vanishes_and_returns_is_reconnected_with_the_status_restored(port, plc):
    with open_plc(config=_cfg(port)) as link:
        link.set_status(ready=True, busy=False, fault=False)
        plc.close()  # the PLC reboots
        t0 = time.monotonic()
        assert link.wait_trigger(600) is None  # rides it out: no error, no trigger
        link.heartbeat()  # kept for the reconnect
        assert not link.connected
        assert time.monotonic() - t0 < 5
        back = PymodbusPlc(tcp_port=port)  # the PLC returns on the same address, with fresh memory
        try:
            back_trigger = None
            deadline = time.monotonic() + 10
            back_ready = False
            while back_trigger is None and time.monotonic() < deadline:
                if not back_ready and "h" in back.live and back.regs[6] == 0b1001:
                    back_ready = True  # the status word (ready + the kept heartbeat) was written again
                    back.regs[7] = 88
                back_trigger = link.wait_trigger(100)
            assert back_ready and back_trigger is not None and back_trigger.part_id == 88
            assert link.reconnects == 1
            link.send_result(PartResult(88, 1, Verdict.REJECT, 0.9))
            assert back.regs[0] == 2 and back.regs[1] == 1 and back.regs[3] == 88
        finally:
            back.close()


def test_a_plc_gone_for_longer_than_give_up_is_a_plc_error(port, plc):
    with open_plc(config=_cfg(port, give_up_s=0.5)) as link:
        plc.close()
        deadline = time.monotonic() + 20
        with pytest.raises(PlcError, match=r"unreachable for \d+ s \(plc.modbus_tcp.give_up_s 0.5\)"):
            while time.monotonic() < deadline:
                link.wait_trigger(100)


def test_a_result_that_cannot_be_delivered_raises(port, plc):
    with open_plc(config=_cfg(port)) as link:
        plc.close()
        with pytest.raises(PlcError, match="did not answer"):
            link.send_result(PartResult(5, 1, Verdict.ACCEPT, 0.1))


def test_a_refusing_plc_is_a_plc_error_naming_the_address(port, plc):
    cfg = dataclasses.replace(_cfg(port), registers=RegisterMapConfig(trigger_register=100))
    with open_plc(config=cfg) as link:  # pymodbus holds 32 registers: 100 is an illegal data address
        with pytest.raises(PlcError, match="refused READ_HOLDING_REGISTERS at address 100"):
            link.wait_trigger(100)


def test_no_plc_at_start_is_a_plc_error(port):
    with pytest.raises(PlcError, match=f"127.0.0.1:{port}.*connect"):
        open_plc(config=_cfg(port))
