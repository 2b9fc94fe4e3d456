"""benchmarks/factors.py: the per-defect-type pixel AUROC, and what the `coarse` variants of issue 21 round 4 set.

The maps here are made up so that each figure is exact by construction; nothing depends on a trained model.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs torch (extra [train])")

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
_spec = importlib.util.spec_from_file_location("edgead_factors_benchmark", ROOT / "benchmarks" / "factors.py")
factors = importlib.util.module_from_spec(_spec)
sys.modules["edgead_factors_benchmark"] = factors  # its dataclasses look their module up
_spec.loader.exec_module(factors)


def test_each_defect_type_is_scored_against_the_good_images_alone():
    good = np.full((8, 8), 0.5)
    found, missed = good.copy(), good.copy()
    found[2:4, 2:4] = 1.0  # above every good pixel
    missed[:, :4] = 0.0  # a large region below every good pixel: the pooled figure hides which type it was
    masks = np.zeros((3, 8, 8), bool)
    masks[1, 2:4, 2:4] = True
    masks[2, :, :4] = True
    by_type = factors.pixel_auroc_by_type(["good", "blowhole", "uneven"], masks, np.stack([good, found, missed]))
    assert by_type == {"blowhole": 1.0, "uneven": 0.0}


def test_the_coarse_variants_change_one_setting_of_the_coarse_preset():
    from edgead.models.registry import model_params

    coarse = model_params("patchcore", "coarse")
    base = factors.VARIANTS["patchcore old default (blocks 2+4, unscaled, 10 %)"]
    same = {**base.params, "grid_layer": base.params["grid_layer"] or base.params["layers"][0]}  # None: the first
    assert {k: same[k] for k in ("layers", "grid_layer", "layer_scaling", "coreset_ratio")} == {
        k: coarse[k] for k in ("layers", "grid_layer", "layer_scaling", "coreset_ratio")}
    big = factors.VARIANTS["patchcore coarse 320x320"]
    assert big.input.hw == (320, 320) and big.params == base.params
    fine_grid = factors.VARIANTS["patchcore coarse @stride 4, 2.5 %"]
    assert fine_grid.params["layers"] == ["block2", "block4"] and fine_grid.params["grid_layer"] == "block1"
    model, _ = factors.build(fine_grid)
    assert model.grid_hw == (64, 64)  # blocks 2 and 4 upsampled onto block1's stride-4 grid before the kNN
    assert factors.VARIANTS["patchcore coarse, sigma 16"].params["sigma_px"] == 16.0


def test_re_smoothed_rows_are_what_a_model_with_that_sigma_gives(small_station, tmp_path):
    from dataclasses import replace

    from edgead.data import scan_category

    cat = scan_category(small_station.aligned)
    fit_paths = [s.path for s in cat.train][:4]
    small = replace(factors.BASE, hw=(64, 64))
    coarse = factors.Variant("patchcore", factors.OLD, small)
    rows = factors.run_variant("coarse", coarse, cat, fit_paths, tmp_path, sigmas=(4.0, 8.0))
    assert [r["variant"] for r in rows] == ["coarse", "coarse, sigma 4 (re-smoothed)", "coarse, sigma 8 (re-smoothed)"]
    keys = ("image_auroc", "pixel_auroc", "aupro", "pixel_auroc_by_type")
    assert [rows[1][k] for k in keys] == [rows[0][k] for k in keys]  # its own sigma: the same maps
    direct = factors.run_variant("sigma 8", replace(coarse, params={**factors.OLD, "sigma_px": 8.0}), cat,
                                 fit_paths, tmp_path)
    assert [rows[2][k] for k in keys] == [direct[0][k] for k in keys] and rows[2]["params"]["sigma_px"] == 8.0


def test_false_alarms_inside_defective_images_are_told_apart():
    good = np.full((4, 4), 0.5)
    defective = np.full((4, 4), 0.9)  # its unmasked pixels score above its defect
    defective[0, 0] = 0.6
    masks = np.zeros((2, 4, 4), bool)
    masks[1, 0, 0] = True
    maps = np.stack([good, defective])
    assert factors.pixel_auroc_good_negatives(np.array([0, 1]), masks, maps) == 1.0  # above every good pixel
    assert factors.pixel_auroc(masks, maps) == 16 / 31  # pooled: below the defective image's own 15 pixels


def test_a_rerun_resumes_from_the_fitted_state_and_gives_the_same_rows(small_station, tmp_path, monkeypatch):
    from dataclasses import replace

    from edgead.data import scan_category

    cat = scan_category(small_station.aligned)
    fit_paths = [s.path for s in cat.train][:4]
    coarse = factors.Variant("patchcore", factors.OLD, replace(factors.BASE, hw=(64, 64)))
    first = factors.run_variant("coarse", coarse, cat, fit_paths, tmp_path)
    assert len(list(tmp_path.glob("fitted-*.npz"))) == 1 and not first[0]["fit_resumed"]

    def no_fit(*args, **kwargs):
        raise AssertionError("a rerun must not fit again")

    real_build = factors.build
    monkeypatch.setattr(factors, "build", lambda v: (real_build(v)[0], no_fit))
    again = factors.run_variant("coarse", coarse, cat, fit_paths, tmp_path)
    keys = ("image_auroc", "pixel_auroc", "aupro", "pixel_auroc_by_type")
    assert again[0]["fit_resumed"] and [again[0][k] for k in keys] == [first[0][k] for k in keys]
    other = factors.fit_key(coarse, fit_paths[:3])  # other fit images: another state
    assert other != factors.fit_key(coarse, fit_paths)
