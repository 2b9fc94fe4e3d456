"""Image reading/writing: layouts, formats, and every way a file can be broken."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgead.data.images import Color, decode_image, encode_image, image_hw, is_gray, load_image, write_image
from edgead.errors import ImageError


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)


def test_png_round_trip_keeps_rgb_order(tmp_path, rgb):
    path = write_image(tmp_path / "a.png", rgb)
    assert np.array_equal(load_image(path, Color.RGB), rgb)
    bgr = cv2.imread(str(path))
    assert np.array_equal(bgr[:, :, ::-1], rgb)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".jpg", ".JPEG"])
def test_formats_and_layouts(tmp_path, rgb, suffix):
    path = write_image(tmp_path / f"a{suffix}", rgb)
    img = load_image(path, Color.RGB)
    assert img.shape == (30, 50, 3) and img.dtype == np.uint8
    gray = load_image(path, Color.GRAY)
    assert gray.shape == (30, 50, 1) and gray.dtype == np.uint8
    assert image_hw(path) == (30, 50)


def test_gray_file_read_as_rgb_has_equal_channels(tmp_path, rgb):
    path = write_image(tmp_path / "g.png", rgb[:, :, :1])
    assert is_gray(path)
    img = load_image(path, Color.RGB)
    assert img.shape == (30, 50, 3) and (img[:, :, 0] == img[:, :, 2]).all()


def test_is_gray_on_colour_with_equal_channels(tmp_path, rgb):
    assert is_gray(write_image(tmp_path / "eq.png", np.repeat(rgb[:, :, :1], 3, axis=2)))
    assert not is_gray(write_image(tmp_path / "col.png", rgb))


def test_sixteen_bit_png_is_scaled_to_uint8(tmp_path):
    deep = np.full((4, 6), 0xABCD, np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    assert (load_image(tmp_path / "d.png", Color.GRAY) == 0xAB).all()


def test_corrupt_bytes():
    with pytest.raises(ImageError, match="corrupt"):
        decode_image(b"this is not an image at all", Color.RGB)


def test_empty_bytes_and_empty_file(tmp_path):
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"", Color.RGB)
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"zero\.png.*empty"):
        load_image(tmp_path / "zero.png", Color.RGB)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file_names_the_file(tmp_path, rgb, suffix):
    data = encode_image(rgb, suffix)
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=rf"cut\{suffix}.*(corrupt|truncated)"):
        load_image(tmp_path / f"cut{suffix}", Color.RGB)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png.*unreadable"):
        load_image(tmp_path / "nope.png", Color.GRAY)


def test_encode_rejects_bad_arrays(rgb):
    with pytest.raises(ImageError, match="float32"):
        encode_image(rgb.astype(np.float32))
    with pytest.raises(ImageError, match="tif"):
        encode_image(rgb, ".tif")


def test_image_hw_falls_back_to_decoding(tmp_path, rgb):
    ok, buf = cv2.imencode(".webp", rgb)
    assert ok
    (tmp_path / "a.webp").write_bytes(buf.tobytes())
    assert image_hw(tmp_path / "a.webp") == (30, 50)


def test_data_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, edgead.data, edgead.data.synthetic; "
            "assert 'torch' not in sys.modules, 'edgead.data imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
