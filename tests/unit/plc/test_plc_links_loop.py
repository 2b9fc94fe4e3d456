"""Links on pyserial's loop:// twin (RTS -> CTS, DTR -> DSR; TX -> RX) and the trigger queue."""
from __future__ import annotations

import threading
import time

import pytest

from edgead.errors import PlcError
from edgead.plc import PartResult, PlcConfig, Protocol, open_plc
from edgead.plc.base import Trigger, TriggerQueue
from edgead.plc.config import DiscreteConfig
from edgead.verdict import Verdict


def _watch(port, stop: threading.Event, edges: list[str]) -> None:
    last = {"cts": False, "dsr": False}
    while not stop.is_set():
        for name in last:
            level = getattr(port, name)
            if level and not last[name]:
                edges.append(name)
            last[name] = level
        time.sleep(0.0005)


def test_discrete_pulses_on_loop():
    cfg = PlcConfig(protocol=Protocol.DISCRETE, discrete=DiscreteConfig(pulse_ms=25, gap_ms=10))
    with open_plc("loop://", cfg) as link:
        port = link._port._port  # the loop:// twin: our RTS/DTR read back as CTS/DSR
        assert (port.cts, port.dsr) == (False, False)  # fail-safe on open: nothing asserted
        assert link.wait_trigger(1000) is None
        edges: list[str] = []
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(port, stop, edges))
        watcher.start()
        for verdict in (Verdict.ACCEPT, Verdict.REJECT, Verdict.NO_READ, Verdict.FAULT, Verdict.ACCEPT):
            link.send_result(PartResult(1, 1, verdict, 0.1))
        link.send_failsafe(9)
        stop.set()
        watcher.join()
        assert edges == ["cts", "dsr", "dsr", "dsr", "cts", "dsr"]
        assert (port.cts, port.dsr) == (False, False) and link.pulses == 6


def test_ascii_on_loop_reads_its_own_echo_as_garbage():
    with open_plc("loop://", PlcConfig(protocol=Protocol.ASCII)) as link:
        link.send_result(PartResult(5, 1, Verdict.ACCEPT, 0.1))
        assert link.wait_trigger(50) is None and link.last_garbage == b"OK 5\r\n"


def test_open_bad_port_names_it():
    with pytest.raises(PlcError, match="/dev/ttyNOPE0"):
        open_plc("/dev/ttyNOPE0", PlcConfig(protocol=Protocol.ASCII))
    with pytest.raises(PlcError, match="nope://"):
        open_plc("nope://x", PlcConfig(protocol=Protocol.ASCII))


def test_closed_link_raises():
    link = open_plc("loop://", PlcConfig(protocol=Protocol.ASCII))
    link.close()
    link.close()
    with pytest.raises(PlcError, match="closed"):
        link.send_result(PartResult(1, 1, Verdict.ACCEPT, 0.1))


def test_trigger_queue_order_and_overrun():
    dropped: list[Trigger] = []
    queue = TriggerQueue(2, dropped.append)
    for part_id in (1, 2, 3, 4):
        queue.put(Trigger(part_id, 0))
    assert [queue.get(0).part_id, queue.get(0).part_id] == [1, 2]
    assert [t.part_id for t in dropped] == [3, 4] and queue.overruns == 2
    assert queue.get(10) is None


def test_modbus_server_on_loop_answers_its_own_request():
    """On loop:// the request we write comes back to the server thread, which answers (echo seen by nobody)."""
    cfg = PlcConfig(protocol=Protocol.MODBUS_SERVER)
    with open_plc("loop://", cfg) as link:
        link.send_result(PartResult(3, 1, Verdict.ACCEPT, 0.1))
        regs, coils = link.snapshot()
        assert regs[:6] == (1, 1, 1, 3, 1, 100) and coils[:2] == (1, 1)
        assert link.wait_trigger(10) is None


def test_modbus_server_takes_recipe_and_lot_with_the_trigger_and_refuses_other_writes():
    from edgead.plc import modbus_rtu as rtu
    from edgead.plc import register_map as rmap
    from edgead.plc.image_server import ImageServerLink

    class Image(ImageServerLink):
        def close(self) -> None:
            pass

    cfg = PlcConfig.from_dict({"protocol": "modbus-server",
                               "registers": {"recipe_register": 9, "lot_id_register": 10, "lot_id_chars": 8}})
    link = Image(cfg)
    assert link.execute(rtu.write_register(1, 9, 2)).exception is None
    assert link.execute(rtu.write_registers(1, 10, rmap.encode_text("LOT7", 4))).exception is None
    assert link.execute(rtu.write_register(1, 7, 41)).exception is None
    trigger = link.wait_trigger(100)
    assert (trigger.part_id, trigger.recipe, trigger.lot_id, trigger.error) == (41, 2, "LOT7", None)
    # one FC16 over recipe (0: keep) .. lot: then the trigger; a lot that is not text travels as the trigger's error
    assert link.execute(rtu.write_registers(1, 9, [0, 0x0102, 0, 0, 0])).exception is None
    link.execute(rtu.write_register(1, 7, 42))
    trigger = link.wait_trigger(100)
    assert trigger.recipe is None and trigger.lot_id is None and "not printable" in trigger.error
    for req in (rtu.write_register(1, 5, 1), rtu.write_registers(1, 8, [1, 2])):  # score; ack + recipe
        reply = link.execute(req)
        assert reply.exception == rtu.ExceptionCode.ILLEGAL_DATA_ADDRESS, req
    assert link.snapshot()[0][5] != 1  # nothing of a refused write landed


def test_an_ascii_trigger_hands_its_recipe_and_lot_to_the_station():
    # on loop:// the link reads what it writes: a pass line shaped like a trigger telegram comes back as one
    cfg = PlcConfig.from_dict({"protocol": "ascii", "ascii": {"pass_template": "T{part_id} R2 LLOT-9\r\n"}})
    with open_plc("loop://", cfg) as link:
        link.send_result(PartResult(5, 1, Verdict.ACCEPT, 0.1))
        trigger = link.wait_trigger(500)
        assert (trigger.part_id, trigger.recipe, trigger.lot_id) == (5, 2, "LOT-9")


def test_a_trigger_queue_wait_ends_when_woken_and_remembers_a_wake_before_it():
    import threading

    from edgead.plc.base import TriggerQueue

    q = TriggerQueue(4, lambda trigger: None)
    q.wake()  # before the wait: the next get returns at once
    assert q.get(60_000) is None and q.take_wake() and not q.take_wake()
    threading.Timer(0.05, q.wake).start()
    assert q.get(60_000) is None and q.take_wake()  # returned on the wake, not after a minute


def test_an_ascii_wait_on_a_loop_port_ends_when_woken():
    from wakes import assert_woken

    with open_plc("loop://", PlcConfig(protocol=Protocol.ASCII)) as link:
        assert_woken(link)
