"""sd_notify over a real AF_UNIX datagram socket (path and abstract), and watchdog pacing from the loop."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import pytest

from edgead.daemon.notify import Notifier, WatchdogPinger, monotonic_usec


@pytest.fixture
def listener(tmp_path):
    """A bound datagram socket standing in for systemd's notify socket: yields (NOTIFY_SOCKET value, socket)."""
    path = tmp_path / "notify.sock"
    if len(str(path)) > 100:
        pytest.skip(f"tmp path too long for an AF_UNIX address: {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield str(path), sock
    sock.close()


def recv(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def drain(sock: socket.socket, quiet_s: float) -> list[str]:
    """Every datagram until none arrives for ``quiet_s``."""
    sock.settimeout(quiet_s)
    out = []
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except socket.timeout:
        return out


def test_messages_over_a_path_socket(listener):
    addr, sock = listener
    with Notifier({"NOTIFY_SOCKET": addr}) as n:
        assert n.enabled
        assert n.ready(status="warming up\nengine")
        assert recv(sock) == ["READY=1", "STATUS=warming up engine"]
        n.status("inspecting: 12 parts")
        assert recv(sock) == ["STATUS=inspecting: 12 parts"]
        n.watchdog()
        assert recv(sock) == ["WATCHDOG=1"]
        n.stopping()
        assert recv(sock) == ["STOPPING=1"]
        n.extend_timeout(120_000_000)
        assert recv(sock) == ["EXTEND_TIMEOUT_USEC=120000000"]
        before = monotonic_usec()
        n.reloading()
        reload_msg = recv(sock)
        assert reload_msg[0] == "RELOADING=1" and reload_msg[1].startswith("MONOTONIC_USEC=")
        assert before <= int(reload_msg[1].split("=")[1]) <= monotonic_usec()
        with pytest.raises(ValueError):
            n.extend_timeout(0)


def test_abstract_socket():
    name = f"edgead-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2.0)
    try:
        with Notifier({"NOTIFY_SOCKET": "@" + name}) as n:
            assert n.ready()
            assert recv(sock) == ["READY=1"]
    finally:
        sock.close()


def test_not_under_systemd_is_a_quiet_noop(caplog):
    caplog.set_level(logging.DEBUG, logger="edgead.daemon.notify")
    n = Notifier({})
    assert not n.enabled and n.watchdog_interval_s() is None
    assert n.ready() is False and n.watchdog() is False and n.status("x") is False
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 1
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert WatchdogPinger(n).tick() is False


def test_vanished_socket_warns_once(tmp_path, caplog):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.ready() is False and n.ready() is False
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    n.close()


def test_watchdog_interval_and_pid_check():
    own = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "10000000"}
    assert Notifier(own).watchdog_interval_s() == 10.0
    assert Notifier({**own, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval_s() == 10.0
    assert Notifier({**own, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval_s() is None
    assert Notifier({**own, "WATCHDOG_USEC": "soon"}).watchdog_interval_s() is None


def test_pinger_pings_at_half_the_interval(listener):
    addr, sock = listener
    clock = [100.0]
    with Notifier({"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "2000000"}) as n:
        pinger = WatchdogPinger(n, clock=lambda: clock[0])
        assert pinger.period_s == 1.0
        sent = []
        for _ in range(32):  # 32 iterations 0.125 s apart (exact in binary) = 4 s of loop time
            sent.append(pinger.tick())
            clock[0] += 0.125
    assert [i for i, s in enumerate(sent) if s] == [0, 8, 16, 24]
    assert drain(sock, 0.2) == ["WATCHDOG=1"] * 4


def test_hung_loop_stops_the_pings(listener):
    """A real loop pings a real socket; once it hangs, the socket receives nothing more."""
    addr, sock = listener
    hang, hung = threading.Event(), threading.Event()
    release = threading.Event()
    n = Notifier({"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "100000"})  # 0.1 s watchdog: ping every 50 ms
    pinger = WatchdogPinger(n)

    def loop():
        while True:
            pinger.tick()
            if hang.is_set():
                hung.set()
                release.wait(10)  # the hang: e.g. a camera call that never returns
                return
            time.sleep(0.005)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    sock.settimeout(5.0)
    before = [sock.recv(4096).decode() for _ in range(3)]  # the loop is pinging
    hang.set()
    assert hung.wait(5)
    pings_before_hang = pinger.pings
    after = drain(sock, 0.5)  # five watchdog periods of silence would be awaited from a hung loop
    release.set()
    worker.join(5)
    n.close()
    assert before == ["WATCHDOG=1"] * 3
    assert len(before) + len(after) == pings_before_hang  # nothing was sent after the hang began
    assert pinger.pings == pings_before_hang


@pytest.mark.timeout(60)  # the old blocking send hung here (and with it the loop, and SIGTERM)
def test_a_socket_nobody_reads_never_blocks_the_sender(listener):
    """systemd busy (its receive queue full): messages are dropped and counted, the sender goes on at once."""
    addr, sock = listener
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with Notifier({"NOTIFY_SOCKET": addr}) as n:
        sent = [n.status(f"parts {i}") for i in range(5000)]
    assert sent[0] and not all(sent)  # the first ones go through, then the queue is full
    assert n.dropped == sent.count(False) > 0
