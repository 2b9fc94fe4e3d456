"""Writing synthetic datasets and replay folders: layout, truth files, determinism, refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgead.data.fingerprint import fingerprint
from edgead.data.images import Color, load_image
from edgead.data.mvtec import Sample, load_mask, scan_category
from edgead.data.synthetic import StationSpec, generate_captures, generate_dataset, pose_of, reference_image
from edgead.errors import DataError

SPEC = StationSpec(height=128, width=160)


def _all_files(root) -> str:
    return fingerprint([Sample(p, 0, "x") for p in root.rglob("*") if p.is_file()], root)


def test_layout_and_truth(rgb_dataset):
    truth = json.loads((rgb_dataset / "truth.json").read_text())
    assert truth["aligned"] is True and truth["spec"]["width"] == 160 and truth["seed"] == 1
    assert len(truth["images"]) == 12
    for rec in truth["images"]:
        assert (rgb_dataset / rec["path"]).is_file()
        pose = pose_of(rec)
        assert abs(pose.dx) <= 0.5 and abs(pose.dy) <= 0.5 and abs(pose.angle_deg) <= 0.05
        if rec["label"]:
            assert rec["mask"] == f"ground_truth/{rec['defect_type']}/{rec['path'].split('/')[-1][:-4]}_mask.png"
            sample = Sample(rgb_dataset / rec["path"], 1, rec["defect_type"], rgb_dataset / rec["mask"])
            assert load_mask(sample, (128, 160)).any()
    ref = load_image(rgb_dataset / "reference.png", Color.RGB)
    assert np.array_equal(ref, reference_image(SPEC))


def test_deterministic_by_seed(tmp_path):
    kw = dict(n_train=3, n_test_good=1, n_test_defect=2)
    a = generate_dataset(tmp_path / "a", SPEC, seed=5, **kw)
    b = generate_dataset(tmp_path / "b", SPEC, seed=5, **kw)
    c = generate_dataset(tmp_path / "c", SPEC, seed=6, **kw)
    assert _all_files(a) == _all_files(b) != _all_files(c)


def test_more_images_keep_the_first_ones(tmp_path):
    a = generate_dataset(tmp_path / "a", SPEC, n_train=2, n_test_good=0, n_test_defect=0)
    b = generate_dataset(tmp_path / "b", SPEC, n_train=4, n_test_good=0, n_test_defect=0)
    for name in ("000.png", "001.png"):
        assert (a / "train/good" / name).read_bytes() == (b / "train/good" / name).read_bytes()


def test_misaligned_dataset_and_bmp(tmp_path):
    root = generate_dataset(tmp_path / "raw", SPEC, n_train=8, n_test_good=0, n_test_defect=1, aligned=False,
                            suffix=".bmp")
    truth = json.loads((root / "truth.json").read_text())
    assert truth["aligned"] is False
    assert max(abs(pose_of(r).dx) for r in truth["images"]) > 1.0
    cat = scan_category(root)
    assert len(cat.train) == 8 and cat.test[0].path.suffix == ".bmp" and cat.test[0].mask_path is not None


def test_refuses_non_empty_folder_and_bad_counts(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not empty"):
        generate_dataset(tmp_path / "full", SPEC, n_train=1)
    with pytest.raises(DataError, match="n_train=0"):
        generate_dataset(tmp_path / "new", SPEC, n_train=0)
    with pytest.raises(DataError, match="tif"):
        generate_dataset(tmp_path / "new", SPEC, n_train=1, suffix=".tif")
    with pytest.raises(DataError, match="defect_rate"):
        generate_captures(tmp_path / "cap", SPEC, n=2, defect_rate=1.5)


def test_captures_replay_folder(tmp_path):
    root = generate_captures(tmp_path / "cap", SPEC, n=12, defect_rate=0.5, seed=3)
    top = sorted(p.name for p in root.iterdir() if p.suffix == ".png")
    assert top == [f"{i:06d}.png" for i in range(12)]
    files = json.loads((root / "truth.json").read_text())["files"]
    assert sorted(files) == top
    assert len({f["part_id"] for f in files.values()}) == 12
    defective = [f for f in files.values() if f["label"]]
    assert 0 < len(defective) < 12
    for name, rec in files.items():
        assert (rec["mask"] is not None) == bool(rec["label"])
        if rec["mask"]:
            sample = Sample(root / name, 1, rec["defect_type"], root / rec["mask"])
            assert load_mask(sample, (128, 160)).any()
    assert max(abs(pose_of(r).dx) for r in files.values()) > 1.0
    again = generate_captures(tmp_path / "cap2", SPEC, n=12, defect_rate=0.5, seed=3)
    assert _all_files(root) == _all_files(again)
