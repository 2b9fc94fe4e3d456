"""Fixtures of the station tests: a socat pty pair between the station and its PLC."""
from __future__ import annotations

import shutil

import pytest

from edgead.demo.plc_peer import PtyPair


@pytest.fixture
def pty(tmp_path):
    """A socat pty pair (``.station`` for the daemon, ``.plc`` for the peer); skips when socat is missing."""
    if not shutil.which("socat"):
        pytest.skip("socat not installed (Debian package socat)")
    with PtyPair(tmp_path) as pair:
        yield pair
