"""The station's decision section: the rule's settings plus no-read and the inspection window."""
import pytest

from edgead.contract.decide import DecisionRules
from edgead.daemon.decide import DecisionConfig, apply_budget
from edgead.errors import ConfigError
from edgead.verdict import Verdict


def test_overrun_never_accepts():
    cfg = DecisionConfig(cycle_budget_ms=100)
    assert apply_budget(Verdict.ACCEPT, 150.0, cfg)[0] is Verdict.FAULT
    assert apply_budget(Verdict.REJECT, 150.0, cfg) == (Verdict.REJECT, None)
    assert apply_budget(Verdict.ACCEPT, 50.0, cfg) == (Verdict.ACCEPT, None)


def test_config_refuses_unsafe_values():
    with pytest.raises(ConfigError, match="never be accepted"):
        DecisionConfig(no_read_as=Verdict.ACCEPT)
    with pytest.raises(ConfigError):
        DecisionConfig(min_defect_area_px=-1)


def test_the_section_carries_the_rules():
    cfg = DecisionConfig(min_defect_area_px=7, cycle_budget_ms=50)
    assert isinstance(cfg, DecisionRules) and cfg.rules == DecisionRules(min_defect_area_px=7)
