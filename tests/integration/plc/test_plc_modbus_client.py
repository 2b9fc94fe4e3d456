"""Station as Modbus RTU client against a pymodbus 3.x RTU server playing the PLC, over a socat pty pair."""
from __future__ import annotations


import pytest

from edgead.errors import PlcError
from edgead.plc import PartResult, PlcConfig, Protocol, open_plc
from edgead.plc.register_map import decode_result
from edgead.verdict import Verdict
from modbus_peers import PymodbusPlc, burst_with_ack

pytest.importorskip("pymodbus", reason="pymodbus (the [modbus] extra) plays the PLC in these tests")

CFG = PlcConfig(protocol=Protocol.MODBUS_CLIENT)


@pytest.fixture
def plc(pty_pair):
    peer = PymodbusPlc(pty_pair.plc)
    yield peer
    peer.close()


def test_failsafe_image_on_open(pty_pair, plc):
    with open_plc(pty_pair.station, CFG):
        assert plc.regs[0] == 2 and plc.regs[1] == 0 and plc.coil(0) == 0


def test_plc_sees_each_result(pty_pair, plc):
    with open_plc(pty_pair.station, CFG) as link:
        assert link.wait_trigger(30) is None
        link.set_status(ready=True, busy=False, fault=False)
        for n, (part_id, verdict, score) in enumerate([(501, Verdict.ACCEPT, 0.12), (502, Verdict.REJECT, 0.91),
                                                      (503, Verdict.NO_READ, 70.0)], start=1):
            plc.regs[7] = part_id  # the PLC program raises the trigger with the part id
            trigger = link.wait_trigger(3000)
            assert trigger.part_id == part_id
            assert plc.regs[7] == 0 and plc.regs[8] == part_id and plc.regs[1] == 0  # taken, acked, not valid
            link.send_result(PartResult(trigger.part_id, n, verdict, score))
            view = decode_result(dict(enumerate(plc.regs)), {}, CFG.registers)
            assert (view.verdict, view.valid, view.counter, view.part_id, view.seq) == (verdict, True, n, part_id, n)
            assert view.score == min(round(score * 1000), 65535) / 1000
            assert plc.coil(0) == int(verdict is Verdict.ACCEPT) and plc.coil(1) == 1
        assert link.read_coils(0, 2) == (0, 1)
        link.heartbeat()
        assert plc.regs[6] == 0b1001
        link.heartbeat()
        assert plc.regs[6] == 0b0001
    assert plc.regs[0] == 2 and plc.coil(0) == 0  # close: fail-safe image again


def test_burst_of_50_with_a_plc_that_waits_for_ack(pty_pair, plc):
    with open_plc(pty_pair.station, CFG) as link:
        seen = burst_with_ack(link, plc)
    assert seen == list(range(1, 51))
    assert plc.results == [(i, i) for i in range(1, 51)]


@pytest.mark.timeout(30)
def test_no_plc_gives_plc_error(pty_pair):
    with pytest.raises(PlcError, match="did not reply"):
        open_plc(pty_pair.station, CFG)


@pytest.mark.timeout(30)
def test_vanished_port_raises(pty_pair, plc):
    with open_plc(pty_pair.station, CFG) as link:
        assert link.wait_trigger(20) is None
        pty_pair.kill()
        with pytest.raises(PlcError, match="station"):
            link.wait_trigger(500)


def test_a_wait_for_a_trigger_ends_when_woken_between_polls(pty_pair, plc):
    from wakes import assert_woken

    with open_plc(pty_pair.station, CFG) as link:
        assert_woken(link)
        plc.regs[7] = 601  # and the next trigger is taken as before
        assert link.wait_trigger(3000).part_id == 601
