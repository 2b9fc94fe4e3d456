"""A result written to a POSIX serial port (a pty here) goes out with one write(2) and tcdrain(3), without pyserial's
select(2) after every write (issue 18: the answer's cost in the loop); a full output buffer still waits, within the
port's write timeout, and a vanished port is a PlcError. A read that waited for its first byte returns the rest of
what arrived with it (a trigger's whole line), not that byte alone."""
from __future__ import annotations

import os
import pty
import select
import threading
import tty

import pytest

from edgead.errors import PlcError
from edgead.plc.config import SerialConfig
from edgead.plc.serial_port import SerialPort


@pytest.fixture
def pty_pair():
    master, slave = pty.openpty()
    tty.setraw(master)
    name = os.ttyname(slave)
    yield master, name
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def _read(fd: int, n: int) -> bytes:
    out = b""
    while len(out) < n:
        ready, _, _ = select.select([fd], [], [], 5.0)
        assert ready, f"only {out!r} arrived"
        out += os.read(fd, n - len(out))
    return out


def test_a_result_goes_out_without_a_select_per_write(pty_pair, monkeypatch):
    master, name = pty_pair
    with SerialPort(name, SerialConfig()) as port:
        def no_select(*args, **kwargs):
            raise AssertionError("select(2) on the write path")

        monkeypatch.setattr(select, "select", no_select)
        port.write(b"OK 17\r\n")
        monkeypatch.undo()
        assert _read(master, 7) == b"OK 17\r\n"


def test_a_write_larger_than_the_output_buffer_still_arrives_whole(pty_pair):
    master, name = pty_pair
    data = bytes(range(256)) * 256  # 64 KiB: more than a pty holds, the rest goes through pyserial's waiting write
    got = []
    reader = threading.Thread(target=lambda: got.append(_read(master, len(data))))
    reader.start()
    with SerialPort(name, SerialConfig()) as port:
        port.write(data)
    reader.join(10)
    assert got == [data]


def test_a_write_to_a_closed_port_is_a_plc_error(pty_pair):
    _, name = pty_pair
    port = SerialPort(name, SerialConfig())
    port.close()
    with pytest.raises(PlcError):
        port.write(b"OK 1\r\n")


def test_a_read_that_waited_returns_the_whole_line_that_arrived_not_its_first_byte(pty_pair):
    master, name = pty_pair
    with SerialPort(name, SerialConfig()) as port:
        writer = threading.Timer(0.05, os.write, (master, b"T 42\r\n"))
        writer.start()
        try:
            got = port.read_some(64, 5000)  # waits: nothing is there when it starts
        finally:
            writer.join()
        assert got == b"T 42\r\n"
        os.write(master, b"T 43\r\n")
        assert port.read_some(3, 5000) == b"T 4"  # max_bytes still bounds it
