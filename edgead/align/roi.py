"""Regions of interest on the aligned image: checked once against the reference size, then cropped per frame.

Example:
    >>> import numpy as np
    >>> rois = check_rois([Roi("pin", 10, 20, 32, 16)], (240, 320))
    >>> [c.shape for c in crop_rois(np.zeros((240, 320, 1), np.uint8), rois)]
    [(16, 32, 1)]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgead.errors import ConfigError


@dataclass(frozen=True)
class Roi:
    """A named axis-aligned rectangle in reference pixels (``x``, ``y`` top-left, inclusive)."""

    name: str
    x: int
    y: int
    width: int
    height: int


def check_rois(rois: Sequence[Roi], image_shape: tuple[int, ...]) -> list[Roi]:
    """Validate ROIs against the reference size (at config time, not per frame).

    Args:
        rois: the ROIs.
        image_shape: the reference's ``(H, W[, C])``.

    Returns:
        The ROIs as a list, unchanged.

    Raises:
        ConfigError: naming the ROI, for a duplicate name, a non-positive size, or a rectangle outside the image.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    seen: set[str] = set()
    for i, roi in enumerate(rois):
        key = f"rois[{i}] (roi {roi.name!r})"  # the config key, and the name the operator gave it
        if roi.name in seen:
            raise ConfigError(f"{key}: roi {roi.name!r} is defined twice", hint="give every ROI its own name")
        seen.add(roi.name)
        if roi.width <= 0 or roi.height <= 0:
            raise ConfigError(f"{key}: width={roi.width} and height={roi.height} must be > 0")
        if roi.x < 0 or roi.y < 0 or roi.x + roi.width > width or roi.y + roi.height > height:
            raise ConfigError(
                f"{key}: x={roi.x}, y={roi.y}, width x height={roi.width}x{roi.height} is outside the "
                f"{width}x{height} reference image", hint="move or shrink the ROI to lie within the reference")
    return list(rois)


def crop_rois(image: np.ndarray, rois: Sequence[Roi]) -> list[np.ndarray]:
    """Crop checked ROIs (views, no copy) from an aligned image.

    Args:
        image: the aligned image ``[H, W, C]`` (the reference's size).
        rois: ROIs already accepted by :func:`check_rois` for that size.

    Returns:
        One array per ROI, in order.

    Raises:
        ConfigError: naming the ROI when the image is smaller than the ROI needs (it was checked for another size).
    """
    height, width = image.shape[:2]
    out = []
    for roi in rois:
        if roi.x + roi.width > width or roi.y + roi.height > height or roi.x < 0 or roi.y < 0:
            raise ConfigError(f"roi {roi.name!r} does not fit the {width}x{height} image",
                              hint="check_rois() against the reference size at start-up")
        out.append(image[roi.y:roi.y + roi.height, roi.x:roi.x + roi.width])
    return out
