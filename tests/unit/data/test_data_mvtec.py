"""The MVTec AD reader on tiny generated datasets: layouts, colours, sizes, masks and every error."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgead.data.images import Color, load_image, write_image
from edgead.data.mvtec import Sample, load_mask, scan_category, scan_good_folder
from edgead.errors import DataError, ImageError


@pytest.fixture()
def copy(tmp_path, rgb_dataset) -> Path:
    """A writable copy of the RGB dataset."""
    return Path(shutil.copytree(rgb_dataset, tmp_path / "bracket"))


def test_scan_rgb_png(rgb_dataset):
    cat = scan_category(rgb_dataset)
    assert cat.name == "bracket" and cat.root == rgb_dataset
    assert len(cat.train) == 6 and all(s.label == 0 and s.defect_type == "good" for s in cat.train)
    assert [s.path.name for s in cat.train] == sorted(s.path.name for s in cat.train)
    assert sum(s.label for s in cat.test) == 4 and len(cat.test) == 6
    assert cat.defect_types == ("contamination", "dent", "missing_hole", "scratch")
    assert cat.color is Color.RGB and cat.median_hw == (128, 160) and cat.warnings == ()
    for s in cat.test:
        assert (s.mask_path is not None) == bool(s.label)
        if s.mask_path:
            assert s.mask_path.name == f"{s.path.stem}_mask.png"


def test_scan_gray_jpg(gray_jpg_dataset):
    cat = scan_category(gray_jpg_dataset)
    assert cat.color is Color.GRAY
    assert all(s.path.suffix == ".jpg" for s in cat.train + cat.test)
    img = load_image(cat.train[0].path, cat.color)
    assert img.shape == (128, 160, 1)


def test_masks_match_truth(rgb_dataset):
    cat = scan_category(rgb_dataset)
    truth = {r["path"]: r for r in json.loads((rgb_dataset / "truth.json").read_text())["images"]}
    for s in cat.test:
        rel = s.path.relative_to(rgb_dataset).as_posix()
        assert truth[rel]["label"] == s.label and truth[rel]["defect_type"] == s.defect_type
        mask = load_mask(s, (128, 160))
        assert mask.dtype == bool and mask.shape == (128, 160)
        assert mask.any() == bool(s.label)


def test_mixed_formats_sizes_and_case(copy):
    good = copy / "train" / "good"
    files = sorted(good.iterdir())
    img = load_image(files[0], Color.RGB)
    write_image(good / "big.BMP", cv2.resize(img, (200, 150)))
    write_image(good / "small.JPEG", cv2.resize(img, (100, 90)))
    files[1].unlink()
    (good / "notes.txt").write_text("not an image")
    (good / ".hidden.png").write_bytes(b"junk")
    cat = scan_category(copy)
    names = [s.path.name for s in cat.train]
    assert "big.BMP" in names and "small.JPEG" in names and len(names) == 7
    assert cat.median_hw == (128, 160)


def test_varying_sizes_median(tmp_path):
    folder = tmp_path / "good"
    for i, (h, w) in enumerate([(100, 200), (120, 210), (140, 190)]):
        write_image(folder / f"{i}.png", np.full((h, w, 1), 90, np.uint8))
    cat = scan_good_folder(folder)
    assert cat.median_hw == (120, 200) and cat.color is Color.GRAY and cat.test == ()


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_category(tmp_path / "absent")


def test_missing_train_good(tmp_path):
    (tmp_path / "cat" / "test" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match=r"train/good.*does not exist") as info:
        scan_category(tmp_path / "cat")
    assert "scan_good_folder" in str(info.value)


def test_empty_train_good(tmp_path):
    good = tmp_path / "cat" / "train" / "good"
    good.mkdir(parents=True)
    (good / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="holds no images") as info:
        scan_category(tmp_path / "cat")
    assert "good parts" in str(info.value)
    with pytest.raises(DataError, match="holds no images"):
        scan_good_folder(good)


def test_corrupt_image_named(copy):
    bad = copy / "train" / "good" / "zz_corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageError, match=r"zz_corrupt\.png.*corrupt"):  # small sets: every image is sampled
        scan_category(copy)
    sample = Sample(bad, 0, "good")
    with pytest.raises(ImageError, match=r"zz_corrupt\.png.*corrupt"):
        load_image(sample.path, Color.RGB)


def test_defect_without_mask_is_a_warning(copy):
    mask = next((copy / "ground_truth" / "dent").iterdir())
    mask.unlink()
    cat = scan_category(copy)
    (sample,) = [s for s in cat.test if s.defect_type == "dent"]
    assert sample.label == 1 and sample.mask_path is None
    assert len(cat.warnings) == 1 and "'dent'" in cat.warnings[0]
    assert not load_mask(sample, (128, 160)).any()


def test_orphan_mask_is_ignored(copy):
    write_image(copy / "ground_truth" / "dent" / "999_mask.png", np.zeros((128, 160, 1), np.uint8))
    write_image(copy / "ground_truth" / "ghost" / "000_mask.png", np.zeros((128, 160, 1), np.uint8))
    cat = scan_category(copy)
    assert len(cat.test) == 6 and cat.warnings == ()


def test_mask_size_mismatch(copy):
    cat = scan_category(copy)
    sample = next(s for s in cat.test if s.label)
    write_image(sample.mask_path, np.zeros((100, 200, 1), np.uint8))
    with pytest.raises(ImageError, match=r"mask .* is 100x200 but image .* is 128x160"):
        load_mask(sample, (128, 160))


def test_zero_one_masks(tmp_path):
    write_image(tmp_path / "m.png", np.array([[0, 1], [1, 0]], np.uint8)[:, :, None])
    sample = Sample(tmp_path / "x.png", 1, "dent", tmp_path / "m.png")
    assert load_mask(sample, (2, 2)).tolist() == [[False, True], [True, False]]
