"""ASCII link against a plain pyserial peer on the other end of a socat pty pair."""
from __future__ import annotations

import random
import threading
import time

import pytest
import serial

from edgead.errors import PlcError
from edgead.plc import PartResult, PlcConfig, Protocol, open_plc
from edgead.verdict import Verdict
from wakes import assert_woken


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


def test_repeated_garbage_is_reported_not_fatal(pty_pair, caplog):
    """A run of garbage lines (a baud-rate mismatch, a noisy cable) is logged and reported; the link keeps
    listening and the next valid trigger clears the report."""
    cfg = PlcConfig.from_dict({"protocol": "ascii", "ascii": {"max_garbage_lines": 5}})
    with open_plc(pty_pair.station, cfg) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        peer.write(b"\x55\xaa\r\n" * 6)
        for _ in range(10):
            assert link.wait_trigger(100) is None
            if link.garbage_lines >= 6:
                break
        assert link.garbage_lines == 6 and "garbage lines in a row" in link.line_problem
        assert caplog.text.count("5 garbage lines in a row") == 1  # logged once per run
        peer.write(b"T3\r\n")
        assert _answer(link).part_id == 3 and link.line_problem is None


@pytest.mark.timeout(120)
def test_a_paced_10000_byte_noise_line_is_one_garbage_line(pty_pair):
    """Noise without a line end arriving at serial speed (many small reads) used to count as dozens of garbage
    lines and stop the link; it is one line, and the triggers after it are answered."""
    cfg = PlcConfig(protocol=Protocol.ASCII)
    noise = bytes(random.Random(4).choice([b for b in range(256) if b != 0x0A]) for _ in range(10_000))
    with open_plc(pty_pair.station, cfg) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        done = threading.Event()

        def send():
            for i in range(0, len(noise), 50):  # 50 bytes every 5 ms: 10 kB/s, the pace of a fast serial line
                peer.write(noise[i:i + 50])
                time.sleep(0.005)
            peer.write(b"\r\nT41\r\nT42\r\n")
            done.set()

        sender = threading.Thread(target=send)
        sender.start()
        ids = [_answer(link, timeout_ms=30_000).part_id for _ in range(2)]
        sender.join()
        assert ids == [41, 42] and link.garbage_lines == 1 and link.line_problem is None
        assert _read_lines(peer, 2) == [b"OK 41\r\n", b"OK 42\r\n"]


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


def test_a_wait_for_a_trigger_ends_when_woken_and_loses_nothing(pty_pair):
    """``wake()`` from another thread (an OPC UA request) ends a long wait on the port; a wake with nobody waiting
    ends the next one; triggers the PLC sends afterwards arrive as before."""
    cfg = PlcConfig(protocol=Protocol.ASCII)
    with open_plc(pty_pair.station, cfg) as link, serial.Serial(pty_pair.plc, 19200, timeout=0.1) as peer:
        assert_woken(link)
        link.wake()  # nobody waits: the next wait returns at once
        assert link.wait_trigger(60_000) is None
        peer.write(b"T21\r\n")
        assert _answer(link).part_id == 21
        assert _read_lines(peer, 1) == [b"OK 21\r\n"]

