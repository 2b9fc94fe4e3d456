"""The Aravis GigE Vision simulator (arv-fake-gv-camera-0.8 on 127.0.0.1) as a restartable subprocess fixture."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

SIMULATOR = "arv-fake-gv-camera-0.8"
GVCP_PORT = 3956


def _aravis_importable() -> bool:
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis  # noqa: F401
    except (ImportError, ValueError):
        return False
    return True


def _port_free() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", GVCP_PORT))
        except OSError:
            return False
    return True


class Simulator:
    """Start, kill and restart one simulated GigE Vision camera on the loopback interface only."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([SIMULATOR, "-i", "127.0.0.1"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # it binds its socket at once; give it a moment to answer GVCP
        if self.proc.poll() is not None:
            raise RuntimeError(f"{SIMULATOR} exited with {self.proc.returncode}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture()
def aravis_available():
    if not _aravis_importable():
        pytest.skip("PyGObject with the Aravis 0.8 typelib is not installed (extra genicam, gir1.2-aravis-0.8)")


@pytest.fixture()
def gv_simulator(aravis_available):
    if shutil.which(SIMULATOR) is None:
        pytest.skip(f"{SIMULATOR} is not installed (Debian package aravis-tools)")
    if not _port_free():
        pytest.skip(f"UDP 127.0.0.1:{GVCP_PORT} is in use (another GigE Vision simulator is running)")
    sim = Simulator()
    sim.start()
    try:
        yield sim
    finally:
        sim.kill()
