"""Discrete link: one pulse on RTS (pass) or DTR (reject) per result; see ``discrete`` for the semantics.

``send_result`` blocks for ``pulse_ms + gap_ms`` so consecutive results are separate pulses. There is no trigger
input: ``wait_trigger`` returns None at once and the daemon free-runs. Both lines are driven low on open and on
close (fail-safe: never "pass").
"""
from __future__ import annotations

import time

from edgead.errors import PlcError
from edgead.plc.base import PartResult, PlcLink, Trigger
from edgead.plc.config import PlcConfig
from edgead.plc.discrete import idle_levels, plan_pulse
from edgead.plc.serial_port import SerialPort


class DiscreteLink(PlcLink):
    """Pulses on modem-control lines.

    Args:
        url: pyserial URL of a port with RTS/DTR (``loop://`` for the twin).
        cfg: the ``plc`` section.

    Raises:
        PlcError: if the port cannot be opened or the lines cannot be driven.
    """

    def __init__(self, url: str, cfg: PlcConfig):
        self._cfg = cfg.discrete
        self.failsafe_verdict = cfg.failsafe_verdict
        self._port = SerialPort(url, cfg.serial)
        self.pulses = 0
        try:
            self._idle()
        except PlcError:
            self._port.close()
            raise

    def _idle(self) -> None:
        for line, level in idle_levels(self._cfg).items():
            self._port.set_line(line, level)

    def wait_trigger(self, timeout_ms: float) -> Trigger | None:
        """No trigger source: returns None at once."""
        return None

    def send_result(self, result: PartResult) -> None:
        """Pulse the pass line (accept) or the reject line (anything else).

        Raises:
            PlcError: if the line cannot be driven.
        """
        pulse = plan_pulse(result.verdict, self._cfg)
        try:
            self._port.set_line(pulse.line, True)
            time.sleep(pulse.high_ms / 1000)
        finally:
            self._port.set_line(pulse.line, False)
        self.pulses += 1
        time.sleep(pulse.low_ms / 1000)

    def set_status(self, ready: bool, busy: bool, fault: bool) -> None:
        """No status lines in the discrete protocol."""

    def heartbeat(self) -> None:
        """No heartbeat line in the discrete protocol."""

    def close(self) -> None:
        """Drive both lines low (best effort) and release the port (idempotent)."""
        if self._port.is_open:
            try:
                self._idle()
            except PlcError:
                pass
        self._port.close()
