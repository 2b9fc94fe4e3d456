"""The training-data fingerprint: stable where it should be, sensitive to every change of the images."""
from __future__ import annotations

import shutil

import pytest

from edgead.data.fingerprint import fingerprint
from edgead.data.mvtec import Sample, scan_category, scan_good_folder
from edgead.errors import DataError


@pytest.fixture()
def good(tmp_path, rgb_dataset):
    return shutil.copytree(rgb_dataset / "train" / "good", tmp_path / "a" / "good")


def test_stable_across_calls_order_and_location(tmp_path, good):
    first = fingerprint(scan_good_folder(good).train)
    assert len(first) == 64 and int(first, 16) >= 0
    assert fingerprint(reversed(scan_good_folder(good).train)) == first
    moved = shutil.copytree(good, tmp_path / "elsewhere" / "good")
    assert fingerprint(scan_good_folder(moved).train) == first


def test_same_as_in_category(rgb_dataset, good):
    assert fingerprint(scan_category(rgb_dataset).train) == fingerprint(scan_good_folder(good).train)


def _fp(folder) -> str:
    """Fingerprint of the folder as it is now (no decoding: an edited image need not stay valid)."""
    return fingerprint(Sample(p, 0, "good") for p in sorted(folder.iterdir()))


def test_sensitive_to_edit_rename_add_remove(good):
    base = _fp(good)
    assert base == fingerprint(scan_good_folder(good).train)
    files = sorted(good.iterdir())
    seen = {base}

    data = bytearray(files[0].read_bytes())
    data[-20] ^= 0xFF  # same size, different content
    files[0].write_bytes(bytes(data))
    seen.add(_fp(good))

    files[1].rename(good / "renamed.png")
    seen.add(_fp(good))

    shutil.copy(files[2], good / "extra.png")
    seen.add(_fp(good))

    files[3].unlink()
    seen.add(_fp(good))
    assert len(seen) == 5


def test_empty_and_vanished(good):
    with pytest.raises(DataError, match="empty"):
        fingerprint([])
    samples = scan_good_folder(good).train
    samples[0].path.unlink()
    with pytest.raises(DataError, match=samples[0].path.name):
        fingerprint(samples)
