"""benchmarks/step_cost.py: how a step is timed, and how a preset's schedule is extrapolated from the timed steps.

Nothing here depends on how fast this machine is: the tests check counts and the arithmetic of the extrapolation.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("edgead_step_cost_benchmark", ROOT / "benchmarks" / "step_cost.py")
step_cost = importlib.util.module_from_spec(_spec)
sys.modules["edgead_step_cost_benchmark"] = step_cost
_spec.loader.exec_module(step_cost)


def test_the_clock_times_each_step_from_the_end_of_one_to_the_end_of_the_next_and_restores_the_step():
    calls = []

    def optimise_step(optimiser, loss, **kw):
        calls.append(loss)
        return float(loss)

    module = types.SimpleNamespace(optimise_step=optimise_step)
    with step_cost.StepClock(module) as clock:
        assert module.optimise_step is not optimise_step
        for i in range(5):
            assert module.optimise_step(None, i) == float(i)
    assert module.optimise_step is optimise_step
    assert calls == [0, 1, 2, 3, 4]
    wall, cpu = clock.steps(warmup=1)
    assert len(wall) == len(cpu) == 3  # 5 ends make 4 steps; the first is dropped
    assert all(v >= 0 for v in wall + cpu)


def test_a_run_times_the_presets_real_loop_and_extrapolates_its_schedule_from_the_median_step(tmp_path):
    rows = step_cost.measure("draem", "quick", steps=2, warmup=1, threads=[1], rounds=1, hw=(64, 64))
    (row,) = rows
    assert (row["model"], row["preset"], row["phase"], row["threads"], row["batch"]) == ("draem", "quick", "train", 1, 8)
    assert row["steps_timed"] == 2
    assert row["schedule_steps"] == 200  # the quick preset's steps
    assert row["schedule_cpu_h"] == pytest.approx(row["cpu_s_median"] * 200 / 3600)
    assert row["schedule_wall_h"] == pytest.approx(row["wall_s_median"] * 200 / 3600)
    text = step_cost.report(rows)
    assert "an extrapolation, not a measured run" in text
    assert "| draem | quick | train | 64x64 | 8 | 1 | 2 |" in text
    # --docs: the rows merge into the results file, a new run of the same phase replacing the old one
    path = tmp_path / "step_cost.json"
    other = {**row, "preset": "cpu"}
    step_cost.save_json(path, {"rows": [other, {**row, "steps_timed": 99}]})
    assert step_cost.merge(path, rows) == [other, row]


def test_efficientad_has_its_teacher_and_student_phases_in_the_order_they_run():
    assert [p.name for p in step_cost.PHASES["efficientad"]] == ["teacher", "student"]
    assert [p.steps_param for p in step_cost.PHASES["efficientad"]] == ["teacher_steps", "steps"]
