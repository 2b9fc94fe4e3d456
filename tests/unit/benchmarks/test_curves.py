"""benchmarks/curves.py: the order of its points, the reuse of an equal training, and the trend it reports.

The points here are made up (round figures): nothing depends on a trained model's floats.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("edgead_curves_benchmark", ROOT / "benchmarks" / "curves.py")
curves = importlib.util.module_from_spec(_spec)
sys.modules["edgead_curves_benchmark"] = curves
_spec.loader.exec_module(curves)


def point(model: str, preset: str, budget: int, auroc: float, cpu_s: float | None = 100.0, **extra) -> dict:
    return {"model": model, "preset": preset, "param": curves.LADDERS[model][0], "budget": budget,
            "image_auroc": auroc, "pixel_auroc": auroc, "aupro": auroc, "train_cpu_s": cpu_s, "train_wall_s": cpu_s,
            "load_start": 1.0, **extra}


def test_each_presets_own_budget_runs_first_in_the_given_model_order_and_once():
    order = curves.schedule(["efficientad", "piade"], ["cpu"], levels=2)
    assert order[:2] == [("efficientad", "cpu", 1000), ("piade", "cpu", 40)]  # the presets' own points
    assert order[2:] == [("efficientad", "cpu", 200), ("piade", "cpu", 10), ("efficientad", "cpu", 500),
                         ("piade", "cpu", 20)]
    assert curves.schedule(["vt-adl"], ["cpu"], levels=0) == [("vt-adl", "cpu", 80)]
    assert curves.schedule(["vt-adl"], ["quick"], levels=1) == [("vt-adl", "quick", 20)]  # no duplicate rung
    # --budgets: only those, in that order (a point cheaper than the preset's own when the cores are scarce)
    assert curves.schedule(["efficientad"], ["cpu"], levels=5, budgets=[200, 500]) == [("efficientad", "cpu", 200),
                                                                                    ("efficientad", "cpu", 500)]


def test_a_point_of_another_preset_with_the_same_parameters_is_the_same_training():
    cached = {"ae-knn|quick|120": point("ae-knn", "quick", 120, 0.6),
              "efficientad|quick|1000": point("efficientad", "quick", 1000, 0.5)}
    assert curves.same_training("ae-knn", "cpu", 120, cached) is cached["ae-knn|quick|120"]  # cpu = quick + epochs
    assert curves.same_training("ae-knn", "cpu", 60, cached) is None  # another budget
    assert curves.same_training("efficientad", "cpu", 1000, cached) is None  # cpu has another teacher
    copied = {"ae-knn|cpu|120": point("ae-knn", "cpu", 120, 0.6, same_as="ae-knn|quick|120")}
    assert curves.same_training("ae-knn", "paper", 120, copied) is None  # never a copy of a copy


def test_the_trend_follows_the_budget_even_where_cpu_time_does_not():
    # CPU time of the largest budget below the others' (a loaded machine): the fit must still go by budget
    pts = [point("ae-knn", "quick", 30, 0.50, 400.0), point("ae-knn", "quick", 60, 0.55, 500.0),
           point("ae-knn", "quick", 120, 0.60, 300.0)]
    t = curves.trend(pts, 70.0)
    assert math.isclose(t["per_doubling_pt"], 5.0)
    assert math.isclose(t["reach_budget"], 480.0)  # two more doublings
    assert math.isclose(t["reach_cpu_s"], 480.0 * 300.0 / 120)
    assert curves.reach_text(t, "epochs", 0.60, ("padim", 70.0, 60.0)) == "epochs=480, about 1200 CPU s"
    assert curves.reach_text({**t, "reach_cpu_s": 138000.0}, "epochs", 0.60, ("padim", 70.0, 60.0)) == \
        "epochs=480, about 38 CPU h"


def test_a_flat_or_falling_or_reached_trend_is_said_in_words():
    flat = [point("piade", "quick", 10, 0.597), point("piade", "quick", 20, 0.603)]
    t = curves.trend(flat, 85.9)
    assert math.isinf(t["reach_budget"])
    assert curves.reach_text(t, "epochs", 0.603, ("padim", 85.9, 74.7)).startswith("out of reach")
    falling = [point("vt-adl", "cpu", 20, 0.60), point("vt-adl", "cpu", 40, 0.55)]
    assert curves.reach_text(curves.trend(falling, 85.9), "epochs", 0.60, ("padim", 85.9, 74.7)) == "not rising"
    above = [point("draem", "cpu", 200, 0.80), point("draem", "cpu", 400, 0.90)]
    assert curves.reach_text(curves.trend(above, 85.9), "steps", 0.90, ("padim", 85.9, 74.7)) == "reached"
    assert curves.trend(flat[:1], 85.9) is None


def test_the_report_marks_a_reused_point_and_its_threads():
    points = {"ae-knn|quick|120": point("ae-knn", "quick", 120, 0.6, threads=2),
              "ae-knn|cpu|120": point("ae-knn", "cpu", 120, 0.6, same_as="ae-knn|quick|120", threads=1)}
    rows = curves.report_rows(points)
    assert "| ae-knn | cpu | epochs=120 (the quick point: same parameters) |" in rows
    assert rows.count("| 1 |") == 1 and rows.count("| 2 |") == 1


def test_the_diagnosis_splits_scores_by_orientation_lighting_and_defect_type():
    spec = importlib.util.spec_from_file_location("edgead_diagnose_benchmark", ROOT / "benchmarks" / "diagnose.py")
    diagnose = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagnose)
    # scores separate perfectly on portrait tiles and are inverted on landscape ones; good scores follow the grey
    labels = [0, 0, 1, 1, 0, 0, 1, 1]
    scores = [1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 5.0, 6.0]
    landscape = [False] * 4 + [True] * 4
    grey = [10.0, 20.0, 0.0, 0.0, 70.0, 80.0, 0.0, 0.0]
    types = ["good", "good", "crack", "fray", "good", "good", "crack", "fray"]
    d = diagnose.diagnose(labels, scores, landscape, grey, types)
    assert (d["portrait"], d["landscape"]) == (1.0, 0.0) and (d["n_portrait"], d["n_landscape"]) == (4, 4)
    assert d["good_score_grey_corr"] > 0.99
    assert set(d["by_type"]) == {"crack", "fray"}
    text = diagnose.report({"piade|quick|20": d})
    assert "| piade | quick | 20 | 50.0 | 0.0 (4) | 100.0 (4) | +1.00 |" in text


def test_a_variant_of_a_preset_is_its_own_point_bundle_and_curve(tmp_path):
    assert curves.variant_text() == ""
    assert curves.variant_text("portrait") == "+portrait"
    assert curves.variant_text("keep", {"brightness": "mean"}) == "+brightness-mean"
    assert curves.point_key("ae-knn", "quick", 30, "+portrait") == "ae-knn|quick+portrait|30"
    plain = point("ae-knn", "quick", 30, 0.58)
    turned = point("ae-knn", "quick", 30, 0.62, variant="+portrait")
    assert curves.bundle_dir(tmp_path, plain) == tmp_path / "bundles" / "ae-knn-quick-epochs30"
    assert curves.bundle_dir(tmp_path, turned) == tmp_path / "bundles" / "ae-knn-quick+portrait-epochs30"
    points = {"ae-knn|quick|30": plain, "ae-knn|quick+portrait|30": turned}
    assert list(curves.curve_groups(points)) == [("ae-knn", "quick"), ("ae-knn", "quick+portrait")]
    assert "| ae-knn | quick+portrait | epochs=30 |" in curves.report_rows(points)
    # a variant's training is not the preset's: never reused for another preset's point
    assert curves.same_training("ae-knn", "cpu", 30, {"ae-knn|quick+portrait|30": turned}) is None
