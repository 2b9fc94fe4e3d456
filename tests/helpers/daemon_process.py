"""``edgead run`` as its own process in a test: wait for its ``READY=1`` on a notify socket."""
from __future__ import annotations

import socket
import subprocess
import time


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
