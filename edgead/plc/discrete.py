"""Discrete outputs: pure planning of which modem-control line pulses for a verdict.

A result is one pulse of ``pulse_ms`` on the pass line (default RTS) for ``ACCEPT`` and on the reject line
(default DTR) for every other verdict: reject, no-read and fault all take the reject line, which is the
fail-safe. Both lines idle low; the pass line is never high except during a pass pulse, so a crashed or
unplugged station never signals "pass". There is no trigger input and no part id on this protocol: the
daemon free-runs, and the PLC counts pulses. On ``loop://`` pyserial wires RTS -> CTS and DTR -> DSR, the twin
used by the tests.

Example:
    >>> plan_pulse(Verdict.NO_READ, DiscreteConfig())
    Pulse(line=<Line.DTR: 'dtr'>, high_ms=50, low_ms=20)
"""
from __future__ import annotations

from dataclasses import dataclass

from edgead.plc.config import DiscreteConfig, Line
from edgead.verdict import Verdict

# The input that mirrors each output on pyserial's loop:// twin (and on a null-modem cable).
LOOPBACK_INPUT = {Line.RTS: "cts", Line.DTR: "dsr"}


@dataclass(frozen=True)
class Pulse:
    """Raise ``line`` for ``high_ms``, then hold it low for at least ``low_ms``."""

    line: Line
    high_ms: int
    low_ms: int


def line_for(verdict: Verdict, cfg: DiscreteConfig) -> Line:
    """The output line of a verdict: the pass line only for ``ACCEPT``, the reject line otherwise."""
    return cfg.pass_line if verdict.passes else cfg.reject_line


def plan_pulse(verdict: Verdict, cfg: DiscreteConfig) -> Pulse:
    """The pulse that signals ``verdict``.

    Args:
        verdict: the part's verdict.
        cfg: lines and timing.

    Returns:
        The :class:`Pulse` to emit.
    """
    return Pulse(line_for(verdict, cfg), cfg.pulse_ms, cfg.gap_ms)


def idle_levels(cfg: DiscreteConfig) -> dict[Line, bool]:
    """Output levels at power-up, between pulses and at close: everything low (never "pass")."""
    return {cfg.pass_line: False, cfg.reject_line: False}
