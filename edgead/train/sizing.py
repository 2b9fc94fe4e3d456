"""Model resolution: keep the part's aspect ratio (real parts are elongated), multiples of the backbone stride."""
from __future__ import annotations

import re
from typing import Sequence

from edgead.errors import ConfigError

STRIDE = 32


def parse_image_size(text: str | int | Sequence[int] | None) -> tuple[int, int] | int | None:
    """Parse ``--image-size``: ``N`` (the long side; aspect from the data) or ``HxW``.

    Raises:
        ConfigError: for anything else, or sizes below 64 px.
    """
    if text is None:
        return None
    if isinstance(text, int):
        return _check(text)
    if isinstance(text, (tuple, list)):
        return (_check(int(text[0])), _check(int(text[1])))
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX*]\s*(\d+)\s*)?", str(text))
    if not m:
        raise ConfigError(f"--image-size {text!r}: expected N (long side) or HxW, e.g. 256 or 160x320")
    if m.group(2) is None:
        return _check(int(m.group(1)))
    return (_check(int(m.group(1))), _check(int(m.group(2))))


def _check(n: int) -> int:
    if n < 64 or n > 4096:
        raise ConfigError(f"--image-size {n}: must be between 64 and 4096 px")
    return n


def model_resolution(size: tuple[int, int] | int | None, median_hw: Sequence[int], default_long: int = 256
                     ) -> tuple[int, int]:
    """Resolve the model's (height, width).

    Args:
        size: explicit (H, W), a long-side length, or None for ``default_long``.
        median_hw: the median (height, width) of the training images, for the aspect ratio.
        default_long: long side when ``size`` is None.

    Returns:
        (height, width), each a multiple of 32, aspect ratio of the data kept (within rounding).

    Example:
        >>> model_resolution(256, (400, 200))
        (256, 128)
    """
    if isinstance(size, tuple):
        return (_round(size[0]), _round(size[1]))
    long_side = int(size or default_long)
    h, w = float(median_hw[0]), float(median_hw[1])
    if h >= w:
        return (_round(long_side), _round(long_side * w / h))
    return (_round(long_side * h / w), _round(long_side))


def _round(n: float) -> int:
    return max(STRIDE * 2, int(round(n / STRIDE)) * STRIDE)
