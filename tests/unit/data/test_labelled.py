"""Labelled splits: defect counts per fraction, no overlap with the reduced test split, symlinks only, the reader
keeps the moved defects out of ``train``, and the errors."""
from __future__ import annotations

import pytest

from edgead.data.labelled import FRACTIONS, defect_count, labelled_split, make_labelled_split
from edgead.data.mvtec import scan_category
from edgead.data.synthetic import StationSpec, generate_dataset
from edgead.errors import DataError


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("lab") / "bracket", StationSpec(height=96, width=128), n_train=30, n_test_good=4,
                            n_test_defect=12, seed=3)


def test_defect_count_matches_the_fraction():
    assert [defect_count(32, f) for f in FRACTIONS] == [1, 2, 4]  # at least one
    assert [defect_count(667, f) for f in FRACTIONS] == [7, 35, 74]
    for n in (30, 100, 667):
        for f in FRACTIONS:
            k = defect_count(n, f)
            assert k == 1 or abs(k / (k + n) - f) <= 0.5 / (k + n)  # the nearest count


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_split_moves_defects_without_overlap(source, tmp_path, fraction):
    split = make_labelled_split(source, tmp_path / "split", fraction, seed=1)
    cat = scan_category(split.root)
    original = scan_category(source)
    assert len(cat.train) == len(original.train) == split.n_train_good  # the good training images are untouched
    assert len(cat.train_defective) == len(split.moved) == defect_count(30, fraction)
    moved = {s.path.resolve() for s in cat.train_defective}
    tested = {s.path.resolve() for s in cat.test}
    assert moved == set(split.moved) and not moved & tested
    assert len(cat.test) == len(original.test) - len(moved)
    assert all(s.mask_path is not None for s in cat.test + cat.train_defective if s.label == 1)
    assert all(p.is_symlink() for p in (split.root / "train" / "good").iterdir())  # never a copy
    assert len(scan_category(source).test) == len(original.test)  # the source is unchanged


def test_split_is_seeded_and_spreads_types(source, tmp_path):
    a = make_labelled_split(source, tmp_path / "a", 0.1, seed=5)
    b = make_labelled_split(source, tmp_path / "b", 0.1, seed=5)
    assert a.moved == b.moved
    types = {p.parent.name for p in a.moved}
    assert len(types) == len(a.moved)  # 3 defects from 3 different types (round-robin)


def test_temporary_split_is_removed(source):
    with labelled_split(source, 0.05) as split:
        root = split.root
        assert root.name == "bracket" and (root / "train" / "good").is_dir()
    assert not root.exists()


def test_errors(source, tmp_path):
    with pytest.raises(DataError, match="fraction"):
        make_labelled_split(source, tmp_path / "x", 0.0)
    with pytest.raises(DataError, match="cannot give"):
        make_labelled_split(source, tmp_path / "y", 0.5)  # 30 defects needed, 12 exist
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        make_labelled_split(source, tmp_path / "full", 0.1)
