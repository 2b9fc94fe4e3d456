"""Orientation and native-resolution tiles: windows cover every pixel, maps stitch back in place, scores are maxima."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.errors import ConfigError
from edgead.infer.base import Prediction
from edgead.infer.layout import Layout, Orientation, infer_layout, layout_images, quarter_turns, windows


class Echo:
    """A twin engine: the map is the image's first channel (float), the score its maximum; no resizing, so a
    stitched map must reproduce the input exactly where it is placed right."""

    def __init__(self):
        self.seen = []

    def infer(self, images):
        self.seen.append(images.shape)
        amap = images[..., 0].astype(np.float32)
        score = amap.reshape(len(amap), -1).max(1)
        return Prediction(score / 255.0, amap / 255.0, score, amap)

    def infer_many(self, batches):
        return [self.infer(b) for b in batches]


@pytest.mark.parametrize("hw, tile, overlap", [((300, 700), (256, 256), 32), ((500, 1250), (256, 320), 16),
                                               ((100, 90), (128, 128), 8), ((256, 256), (256, 256), 0)])
def test_windows_cover_every_pixel_with_the_overlap(hw, tile, overlap):
    covered = np.zeros(hw, int)
    corners = windows(hw, tile, overlap)
    for y, x in corners:
        covered[y:y + tile[0], x:x + tile[1]] += 1
        assert y + min(tile[0], hw[0]) <= hw[0] and x + min(tile[1], hw[1]) <= hw[1]  # never past the edge
    assert covered.min() >= 1
    xs = sorted({x for _, x in corners})
    assert all(b - a <= tile[1] - overlap for a, b in zip(xs, xs[1:]))


def test_tiles_at_native_resolution_stitch_back_exactly():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (500, 1250, 1), np.uint8)
    engine = Echo()
    pred = infer_layout(engine, image, Layout(tile_hw=(256, 320), overlap_px=16))
    assert all(shape[1:3] == (256, 320) for shape in engine.seen)  # every tile native size: nothing squashed
    assert pred.raw_map.shape == (1, 500, 1250)
    np.testing.assert_array_equal(pred.raw_map[0], image[..., 0].astype(np.float32))
    assert pred.raw_score[0] == image.max() and pred.score[0] == pytest.approx(image.max() / 255.0)


def test_a_one_pixel_crack_survives_tiling():
    image = np.zeros((500, 1250, 1), np.uint8)
    image[100:400, 777, 0] = 255  # a 1 px wide crack
    pred = infer_layout(Echo(), image, Layout(tile_hw=(256, 256), overlap_px=32))
    assert pred.raw_map[0, 250, 777] == 255 and pred.raw_map[0, 250, 779] == 0


def test_portrait_parts_are_turned_to_landscape_and_maps_come_back_upright():
    image = np.zeros((300, 120, 1), np.uint8)
    image[10, 100, 0] = 200  # a marker near the top right
    engine = Echo()
    pred = infer_layout(engine, image, Layout(orientation="landscape"))
    assert engine.seen == [(1, 120, 300, 1)]  # the engine saw it lying down
    assert pred.raw_map.shape == (1, 300, 120) and pred.raw_map[0, 10, 100] == 200  # back in place
    assert quarter_turns((120, 300), Orientation.LANDSCAPE) == 0 and quarter_turns((300, 120), "portrait") == 0
    tiles = layout_images(image, Layout(orientation="landscape", tile_hw=(64, 64)))
    assert all(t.shape[:2] == (64, 64) for t in tiles) and len(tiles) == 2 * 5


def test_plain_layout_is_exactly_the_engine():
    engine = Echo()
    image = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    assert Layout().is_plain and infer_layout(engine, image, Layout()).raw_map.shape == (1, 3, 4)
    assert Layout.from_dict(None) == Layout() and Layout.from_dict(Layout("portrait", (32, 48), 4).to_dict()) \
        == Layout("portrait", (32, 48), 4)


def test_bad_layouts_name_the_key():
    with pytest.raises(ConfigError, match="orientation"):
        Layout("sideways")
    with pytest.raises(ConfigError, match="tile_hw"):
        Layout(tile_hw=(8, 8))
    with pytest.raises(ConfigError, match="overlap_px"):
        Layout(tile_hw=(32, 32), overlap_px=32)
    with pytest.raises(ConfigError, match="no key 'tiles'"):
        Layout.from_dict({"tiles": [2, 2]})


def test_map_hw_is_what_infer_layout_returns():
    from edgead.infer.layout import map_hw

    assert map_hw((300, 200), (64, 96), Layout()) == (64, 96)  # the model's resolution
    assert map_hw((300, 200), (64, 96), Layout(Orientation.LANDSCAPE)) == (96, 64)  # turned back with the image
    assert map_hw((200, 300), (64, 96), Layout(Orientation.LANDSCAPE)) == (64, 96)
    assert map_hw((300, 200), (64, 96), Layout(Orientation.LANDSCAPE, (64, 96), 8)) == (300, 200)  # stitched


def test_infer_images_keeps_each_parts_own_map_size_for_the_gate():
    from edgead.convert.gate import compare
    from edgead.infer.layout import infer_images

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 200, hw + (1,), np.uint8) for hw in ((40, 70), (50, 50), (40, 70))]
    images[1][10, 20] = 255  # the defect
    layout = Layout(Orientation.KEEP, (32, 32), 8)
    pred = infer_images(Echo(), images, layout)
    assert [m.shape for m in pred.raw_map] == [(40, 70), (50, 50), (40, 70)]  # stitched at each image's size
    np.testing.assert_array_equal(pred.raw_map[1], images[1][..., 0])
    masks = [np.zeros(m.shape, bool) for m in pred.raw_map]
    masks[1][10, 20] = True
    report = compare(np.array([0, 1, 0]), pred, pred, masks=masks)
    assert report.pixel_auroc == 1.0 and report.image_auroc == 1.0 and report.agreement == 1.0
