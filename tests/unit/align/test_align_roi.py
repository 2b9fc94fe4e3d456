"""ROIs: bounds checked at config time with the ROI named; crops are views of the right size."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.align import Roi, check_rois, crop_rois
from edgead.errors import ConfigError


def test_crop_rois_returns_views_in_order():
    image = np.arange(240 * 320, dtype=np.uint32).reshape(240, 320, 1).astype(np.uint8)
    rois = check_rois([Roi("pin", 10, 20, 32, 16), Roi("edge", 0, 0, 320, 240)], image.shape)
    crops = crop_rois(image, rois)
    assert [c.shape for c in crops] == [(16, 32, 1), (240, 320, 1)]
    assert np.shares_memory(crops[0], image)
    assert np.array_equal(crops[0], image[20:36, 10:42])


@pytest.mark.parametrize("roi", [Roi("right", 300, 0, 21, 10), Roi("below", 0, 231, 10, 10),
                                 Roi("negative", -1, 0, 10, 10), Roi("empty", 0, 0, 0, 10)])
def test_out_of_bounds_roi_is_named(roi):
    with pytest.raises(ConfigError, match=repr(roi.name)):
        check_rois([roi], (240, 320))


def test_duplicate_names_and_crop_on_smaller_image():
    with pytest.raises(ConfigError, match="defined twice"):
        check_rois([Roi("a", 0, 0, 4, 4), Roi("a", 4, 4, 4, 4)], (240, 320))
    rois = check_rois([Roi("wide", 0, 0, 300, 10)], (240, 320))
    with pytest.raises(ConfigError, match="'wide'"):
        crop_rois(np.zeros((100, 100, 3), np.uint8), rois)
