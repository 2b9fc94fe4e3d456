import contract_model as cm  # tests/unit/convert (on sys.path: tests/conftest.py)
import cv2
import numpy as np
import pytest

from edgead.calibration.dataset import MIN_IMAGES, load_calibration_set
from edgead.errors import CalibrationError


@pytest.fixture
def folder(tmp_path):
    return cm.write_good_folder(tmp_path / "good", MIN_IMAGES)


def test_folder_and_list_file(folder, tmp_path):
    a = load_calibration_set(folder, channels=3)
    assert a.images.shape == (MIN_IMAGES, 40, 40, 3) and a.images.dtype == np.uint8
    listing = tmp_path / "list.txt"
    listing.write_text("# good parts\n" + "\n".join(f"good/{p.name}" for p in a.paths) + "\n")
    b = load_calibration_set(listing, channels=3)
    assert b.fingerprint == a.fingerprint and len(b) == MIN_IMAGES
    assert sum(len(x) for x in a.batches(5)) == MIN_IMAGES


def test_too_few_names_folder(folder):
    (folder / "good_000.png").unlink()
    with pytest.raises(CalibrationError, match=f"{folder.name}.*15 image.*at least {MIN_IMAGES}"):
        load_calibration_set(folder, channels=3)


def test_missing_folder(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist"):
        load_calibration_set(tmp_path / "nope", channels=3)


def test_unreadable_image(folder):
    (folder / "good_003.png").write_bytes(b"not a png")
    with pytest.raises(CalibrationError, match="good_003.png is not a decodable image"):
        load_calibration_set(folder, channels=3)


def test_wrong_channels(folder):
    cv2.imwrite(str(folder / "good_004.png"), np.full((40, 40), 100, np.uint8))
    with pytest.raises(CalibrationError, match="good_004.png has 1 channel"):
        load_calibration_set(folder, channels=3)
    with pytest.raises(CalibrationError, match="has 3 channel"):
        load_calibration_set(folder, channels=1)


def test_wrong_shape(folder):
    cv2.imwrite(str(folder / "good_005.png"), np.full((30, 40, 3), 100, np.uint8))
    with pytest.raises(CalibrationError, match="good_005.png is 40x30.*one size"):
        load_calibration_set(folder, channels=3)


def test_16_bit_refused(folder):
    cv2.imwrite(str(folder / "good_006.png"), np.full((40, 40, 3), 1000, np.uint16))
    with pytest.raises(CalibrationError, match="expected 8-bit"):
        load_calibration_set(folder, channels=3)


def test_a_tiling_layout_calibrates_on_the_tiles_the_station_feeds(folder):
    from edgead.contract.layout import Layout, Orientation

    layout = Layout(Orientation.KEEP, (24, 24), 8)  # 40x40 images: 2 x 2 native tiles each
    got = load_calibration_set(folder, channels=3, resize_hw=(24, 24), layout=layout)
    whole = load_calibration_set(folder, channels=3, resize_hw=(24, 24))
    assert got.images.shape == (4 * MIN_IMAGES, 24, 24, 3) and len(got) == MIN_IMAGES
    np.testing.assert_array_equal(got.images[0], whole.images[0][:24, :24])  # native pixels, not squashed
    assert got.fingerprint == whole.fingerprint
