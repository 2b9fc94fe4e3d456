"""``edgead run`` as its own process in a test: started, and waited for until its ``READY=1`` on a notify socket."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator


def wait_ready(sock: socket.socket, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    """Wait until the daemon sends ``READY=1`` on ``sock`` (its ``NOTIFY_SOCKET``, with a receive timeout).

    Raises:
        AssertionError: the daemon exited first (with the end of its stderr), or did not get ready in time.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if "READY=1" in sock.recv(4096).decode():
                return
        except socket.timeout:
            if proc.poll() is not None:
                raise AssertionError(f"the daemon exited with {proc.returncode}: {proc.stderr.read()[-3000:]}")
    raise AssertionError("the daemon did not become ready")


@contextlib.contextmanager
def running_daemon(config: Path, sock: socket.socket, sock_path: Path) -> Iterator[subprocess.Popen]:
    """``python -m edgead run CONFIG`` with ``NOTIFY_SOCKET=sock_path``, yielded once READY; killed on exit if it
    still runs (the test kills or stops it itself)."""
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "edgead", "run", str(config)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(sock, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@contextlib.contextmanager
def notify_socket(folder: Path) -> Iterator[tuple[socket.socket, Path]]:
    """A ``NOTIFY_SOCKET`` (a bound datagram socket, 0.5 s receive timeout) in ``folder``: ``(socket, path)``."""
    path = folder / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(path))
        sock.settimeout(0.5)
        yield sock, path
    finally:
        sock.close()
