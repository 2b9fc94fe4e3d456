"""The reader on real inspection data in /work/shared/datasets (skipped where the folder is absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgead.data.images import Color, image_hw, load_image
from edgead.data.mvtec import load_mask, scan_category

DATASETS = Path(os.environ.get("EDGEAD_DATASETS", Path(__file__).resolve().parents[4] / "shared" / "datasets"))


def _category(name: str) -> Path:
    root = DATASETS / name
    if not root.is_dir():
        pytest.skip(f"real dataset {root} is absent (set EDGEAD_DATASETS to the folder holding it)")
    return root


def _check_masks(cat, per_type: int = 3) -> None:
    for kind in cat.defect_types:
        for sample in [s for s in cat.test if s.defect_type == kind][:per_type]:
            img = load_image(sample.path, cat.color)
            assert image_hw(sample.path) == img.shape[:2]
            assert load_mask(sample, img.shape[:2]).any(), sample.mask_path


def test_magnetic_tile():
    cat = scan_category(_category("magnetic_tile"))
    assert cat.color is Color.GRAY and len(cat.train) == 667
    assert set(cat.defect_types) == {"blowhole", "break", "crack", "fray", "uneven"}
    assert cat.warnings == () and all(s.mask_path for s in cat.test if s.label)
    assert 200 < cat.median_hw[0] < 700 and 200 < cat.median_hw[1] < 450
    sizes = {image_hw(s.path) for s in cat.train[::40]}
    assert len(sizes) > 1, "sizes vary within the category"
    for sample in cat.train[::60]:
        assert load_image(sample.path, cat.color).shape[:2] == image_hw(sample.path)
    _check_masks(cat)


def test_piped_paper():
    names = sorted(p.name for p in DATASETS.glob("piped_*")) if DATASETS.is_dir() else []
    cat = scan_category(_category(names[0] if names else "piped_pa_bdp01_tl"))
    assert cat.color is Color.RGB and cat.median_hw == (128, 128)
    assert len(cat.train) == 32 and cat.defect_types == ("impurity",)
    _check_masks(cat)
