"""ASCII link against a plain pyserial peer on the other end of a socat pty pair."""
from __future__ import annotations

import time

import pytest
import serial

from edgead.errors import PlcError
from edgead.plc import PartResult, PlcConfig, Protocol, open_plc
from edgead.verdict import Verdict


def _read_lines(peer: serial.Serial, n: int, timeout_s: float = 5.0) -> list[bytes]:
    buf = b""
    deadline = time.monotonic() + timeout_s
    while buf.count(b"\n") < n and time.monotonic() < deadline:
        buf += peer.read(peer.in_waiting or 1)
    return buf.splitlines(keepends=True)


def _answer(link, verdict=Verdict.ACCEPT, timeout_ms=3000):
    trigger = link.wait_trigger(timeout_ms)
    assert trigger is not None, "no trigger"
    link.send_result(PartResult(trigger.part_id, 0, verdict, 0.1))
    return trigger


def test_trigger_and_result_with_noise(pty_pair):
    cfg = PlcConfig(protocol=Protocol.ASCII)
    with open_plc(pty_pair.station, cfg) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        peer.write(b"\x00\xfe\x13##\r\n" + b"T17\r\n" + b"\xff\xff\r\n" + b"T18\r\n")
        assert _answer(link).part_id == 17
        assert _answer(link, Verdict.REJECT).part_id == 18
        assert _read_lines(peer, 2) == [b"OK 17\r\n", b"NG 18\r\n"]
        assert link.garbage_lines == 2
        assert link.wait_trigger(50) is None


def test_burst_of_50_answered_in_order(pty_pair):
    cfg = PlcConfig(protocol=Protocol.ASCII, queue_depth=64)
    with open_plc(pty_pair.station, cfg) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        peer.write(b"".join(b"T%d\r\n" % i for i in range(1, 51)))
        ids = [_answer(link).part_id for _ in range(50)]
        assert ids == list(range(1, 51))
        assert _read_lines(peer, 50) == [b"OK %d\r\n" % i for i in range(1, 51)]


def test_overrun_answers_fault_for_dropped_ids(pty_pair):
    cfg = PlcConfig(protocol=Protocol.ASCII, queue_depth=3)
    with open_plc(pty_pair.station, cfg) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        peer.write(b"T1\r\nT2\r\nT3\r\nT4\r\nT5\r\n")
        time.sleep(0.2)
        ids = [_answer(link).part_id for _ in range(3)]
        assert ids == [1, 2, 3] and link.overruns == 2
        assert _read_lines(peer, 5) == [b"FLT 4\r\n", b"FLT 5\r\n", b"OK 1\r\n", b"OK 2\r\n", b"OK 3\r\n"]


def test_failsafe_answer(pty_pair):
    with open_plc(pty_pair.station, PlcConfig(protocol=Protocol.ASCII)) as link, \
            serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        peer.write(b"T9\r\n")
        trigger = link.wait_trigger(3000)
        link.send_failsafe(trigger.part_id)
        assert _read_lines(peer, 1) == [b"NG 9\r\n"]


def test_repeated_garbage_raises(pty_pair):
    cfg = PlcConfig.from_dict({"protocol": "ascii", "ascii": {"max_garbage_lines": 5}})
    with open_plc(pty_pair.station, cfg) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        peer.write(b"\x55\xaa\r\n" * 6)
        with pytest.raises(PlcError, match="garbage lines in a row"):
            for _ in range(10):
                link.wait_trigger(200)


@pytest.mark.timeout(30)  # "quickly": a hang fails here instead of blocking the suite
def test_vanished_port_raises_quickly(pty_pair):
    with open_plc(pty_pair.station, PlcConfig(protocol=Protocol.ASCII)) as link:
        assert link.wait_trigger(20) is None
        pty_pair.kill()
        with pytest.raises(PlcError, match="station"):
            for _ in range(100):
                link.wait_trigger(50)
                link.send_result(PartResult(1, 1, Verdict.REJECT, 0.9))


def test_spy_url_logs_the_traffic(pty_pair, tmp_path):
    log = tmp_path / "spy.txt"
    cfg = PlcConfig(protocol=Protocol.ASCII)
    with open_plc(f"spy://{pty_pair.station}?file={log}&baud=9600", cfg) as link, \
            serial.Serial(pty_pair.plc, 9600, timeout=0.1) as peer:
        peer.write(b"T3\r\n")
        _answer(link)
        assert _read_lines(peer, 1) == [b"OK 3\r\n"]
    text = log.read_text()
    assert "RX" in text and "OK 3" in text  # spy logged what the station read and wrote
