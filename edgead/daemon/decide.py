"""The station's ``decision`` section: the verdict rule's settings (:mod:`edgead.contract.decide`, the one
implementation of the rule) plus what only a station has: the verdict of a part that could not be aligned, and
the inspection window.

A part whose cycle overran the budget is never accepted.
"""
from __future__ import annotations

from dataclasses import dataclass

from edgead.contract.decide import DecisionRules
from edgead.errors import ConfigError
from edgead.verdict import Verdict


@dataclass(frozen=True)
class DecisionConfig(DecisionRules):
    """The ``decision`` section.

    Attributes:
        min_defect_area_px: also require this many above-threshold map pixels (camera pixels: pixels of the
            captured image) to reject; 0 disables the area rule.
        no_read_as: verdict for a part that could not be aligned: ``no-read`` (its own code) or ``reject``.
        cycle_budget_ms: the PLC's inspection window; a later result is sent as the fail-safe verdict.
            0 disables the check.
    """

    no_read_as: Verdict = Verdict.NO_READ
    cycle_budget_ms: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.no_read_as not in (Verdict.NO_READ, Verdict.REJECT):
            raise ConfigError(f"decision.no_read_as: {self.no_read_as.value!r} is not no-read or reject",
                              hint="a part that could not be aligned must never be accepted")
        if self.cycle_budget_ms < 0:
            raise ConfigError(f"decision.cycle_budget_ms: must be >= 0, got {self.cycle_budget_ms}")

    @property
    def rules(self) -> DecisionRules:
        """The settings of the verdict rule alone (what ``edgead predict --config`` applies too)."""
        return DecisionRules(min_defect_area_px=self.min_defect_area_px)


def apply_budget(verdict: Verdict, elapsed_ms: float, cfg: DecisionConfig) -> tuple[Verdict, str | None]:
    """An accept that arrives after the inspection window becomes ``FAULT`` (sent as the fail-safe verdict)."""
    if cfg.cycle_budget_ms and elapsed_ms > cfg.cycle_budget_ms and verdict is Verdict.ACCEPT:
        return Verdict.FAULT, f"overrun: {elapsed_ms:.1f} ms > cycle_budget_ms {cfg.cycle_budget_ms}"
    return verdict, None
