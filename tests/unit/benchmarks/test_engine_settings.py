"""benchmarks/engine_settings.py: the settings take turns in a rotating order, and each is set against the first."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from engine_settings import SETTINGS, summary, turn_order  # noqa: E402

from edgead.infer.threads import ThreadWait  # noqa: E402


def test_no_setting_always_follows_the_same_one():
    names = ["a", "b", "c"]
    assert [turn_order(names, k) for k in range(4)] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"],
                                                        ["a", "b", "c"]]
    assert [turn_order(["x", "y"], k) for k in range(2)] == [["x", "y"], ["y", "x"]]  # round 5's alternation


def test_each_setting_is_given_against_the_first():
    out = summary({"base": [1.0] * 98 + [3.0, 3.0], "other": [2.0] * 98 + [3.0, 3.0]})
    assert out["base"]["p50_ms"] == 1.0 and out["other"]["p50_vs_first"] == 2.0
    assert out["other"]["p99_over_p50"] == 1.5 and out["base"]["p99_vs_first"] == 1.0


def test_the_spin_in_run_setting_is_the_station_s():
    assert SETTINGS["ort-t2-spin-run"].wait is ThreadWait.SPIN_IN_RUN
    assert ThreadWait.SPIN_IN_RUN.ort_entries == {"session.intra_op.allow_spinning": "1",
                                                  "session.force_spinning_stop": "1"}
    assert SETTINGS["ort-t2"].wait.ort_entries == {"session.intra_op.allow_spinning": "0"}
