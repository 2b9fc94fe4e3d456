"""Fixtures for the PLC integration tests: a socat pty pair (station end, PLC end) under tmp_path."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass

import pytest


@dataclass
class PtyPair:
    station: str  # the station opens this end
    plc: str  # the peer (pymodbus, mbpoll, a pyserial script) opens this end
    proc: subprocess.Popen

    def kill(self) -> None:
        """Kill socat (the 'cable is pulled'): both ends vanish."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def pty_pair(tmp_path):
    """A socat pty pair; killed at teardown. Skips when socat is not installed."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat not installed (apt-get install socat)")
    station, plc = str(tmp_path / "station"), str(tmp_path / "plc")
    proc = subprocess.Popen([socat, "-d", "-d", f"pty,raw,echo=0,link={station}", f"pty,raw,echo=0,link={plc}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not (os.path.exists(station) and os.path.exists(plc)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"socat did not create the pty pair: {proc.stderr.read().decode(errors='replace')}")
        time.sleep(0.01)
    pair = PtyPair(station, plc, proc)
    yield pair
    pair.kill()
    proc.stderr.close()


@pytest.fixture
def mbpoll():
    """Path of mbpoll; skips when it is not installed."""
    path = shutil.which("mbpoll")
    if path is None:
        pytest.skip("mbpoll not installed (apt-get install mbpoll)")
    return path
