"""The generic image set (the stand-in for ImageNet and DTD): photos from the installed wheels, procedural images,
folders; deterministic for a seed."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2", reason="needs opencv")

from edgead.errors import DataError  # noqa: E402
from edgead.models.generic import GenericImages, GenericSource, folder_images, package_photos  # noqa: E402


def test_the_train_extras_wheels_ship_real_photographs():
    pytest.importorskip("skimage", reason="needs scikit-image (extra [train])")
    photos = package_photos()
    assert len(photos) >= 10
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in photos.values())


def test_samples_are_seeded_images_in_unit_range():
    pool = GenericImages()
    a = pool.batch(6, (40, 56), np.random.default_rng(3))
    b = pool.batch(6, (40, 56), np.random.default_rng(3))
    assert a.shape == (6, 40, 56, 3) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, pool.batch(6, (40, 56), np.random.default_rng(4)))


def test_procedural_source_uses_no_photos_and_describe_records_provenance():
    procedural = GenericImages(GenericSource.PROCEDURAL)
    assert procedural.photos == {} and procedural.describe()["photos"] == 0
    generic = GenericImages().describe()
    assert generic["source"] == "generic" and len(generic["photos_sha256"]) == 64


def test_folders_add_their_images_and_a_missing_folder_is_named(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((32, 48, 3), 200, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    assert list(folder_images([tmp_path])) == [str(tmp_path / "a.png")]
    pool = GenericImages(dirs=[tmp_path], photo_share=1.0)
    assert str(tmp_path / "a.png") in pool.photos
    with pytest.raises(DataError, match="no-such-dir"):
        GenericImages(dirs=[tmp_path / "no-such-dir"])
