"""benchmarks/ensemble.py: the label-free normalisation, and an ensemble read back from factors.py's saved maps."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs torch (extra [train])")

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
_spec = importlib.util.spec_from_file_location("edgead_ensemble_benchmark", ROOT / "benchmarks" / "ensemble.py")
ensemble = importlib.util.module_from_spec(_spec)
sys.modules["edgead_ensemble_benchmark"] = ensemble
_spec.loader.exec_module(ensemble)
factors = sys.modules["factors"]  # the module ensemble.py imports


def test_normalise_puts_the_median_at_zero_and_the_99th_percentile_at_one():
    values = np.arange(101, dtype=np.float32)  # median 50, 99th percentile 99
    out = ensemble.normalise(values)
    assert out[50] == 0.0 and out[99] == 1.0 and out[0] == -50 / 49
    assert not ensemble.normalise(np.ones(5)).any()  # constant: zeros, no division by zero


def test_members_on_other_scales_weigh_alike_and_maps_reach_the_first_resolution():
    scores = np.arange(101, dtype=np.float32)
    maps = np.zeros((2, 4, 4), np.float32)
    maps[1, :2] = 1.0
    big = np.repeat(np.repeat(maps, 2, axis=1), 2, axis=2) * 1000.0  # the same map at 8x8, on another scale
    s, m = ensemble.combine([(scores, maps), (scores * 1000.0, big)], [1.0, 1.0])
    assert m.shape == (2, 4, 4)
    np.testing.assert_allclose(s, ensemble.normalise(scores), atol=1e-6)


def test_an_ensemble_of_a_model_with_itself_is_that_model(small_station, tmp_path):
    from dataclasses import replace

    from edgead.data import scan_category

    cat = scan_category(small_station.aligned)
    fit_paths = [s.path for s in cat.train][:4]
    coarse = factors.Variant("patchcore", factors.OLD, replace(factors.BASE, hw=(64, 64)))
    row = factors.run_variant("coarse", coarse, cat, fit_paths, tmp_path / "cache", maps_dir=tmp_path / "maps")[0]
    saved = np.load(factors.maps_file(tmp_path / "maps", row))
    assert saved["maps"].shape == (len(cat.test), 64, 64) and str(saved["variant"]) == "coarse"
    alone = ensemble.ensemble_rows(cat, tmp_path / "cache", tmp_path / "maps", 4, ["coarse"], [1.0])
    twice = ensemble.ensemble_rows(cat, tmp_path / "cache", tmp_path / "maps", 4, ["coarse", "coarse"], [1.0, 1.0])
    keys = ("image_auroc", "pixel_auroc", "aupro")
    assert [alone[0][k] for k in keys] == [twice[0][k] for k in keys]  # (n + n) / 2 == n exactly
    assert alone[0]["pixel_auroc"] == pytest.approx(row["pixel_auroc"], abs=0.01)  # float16 maps, rescaled
    with pytest.raises(SystemExit, match="no saved maps"):
        ensemble.ensemble_rows(cat, tmp_path / "cache", tmp_path / "maps", 4, ["other"], [1.0])
