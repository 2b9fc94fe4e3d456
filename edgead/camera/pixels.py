"""GenICam pixel formats -> the Frame layout (uint8 ``[H, W, 1]`` mono or ``[H, W, 3]`` RGB). Pure numpy/cv2.

Example:
    >>> import numpy as np
    >>> to_frame_image(np.zeros(12, np.uint8), 3, 4, "Mono8").shape
    (3, 4, 1)
"""
from __future__ import annotations

import numpy as np

from edgead.errors import CameraError, FrameError

# GenICam Bayer names give the top-left 2x2 tile (BayerRG8 = R G / G B); the OpenCV codes below name the same tile.
_BAYER_CODES: dict[str, str] = {
    "BayerRG8": "COLOR_BayerRGGB2RGB",
    "BayerGR8": "COLOR_BayerGRBG2RGB",
    "BayerGB8": "COLOR_BayerGBRG2RGB",
    "BayerBG8": "COLOR_BayerBGGR2RGB",
}

# format -> bytes per pixel in the payload; one table for validation and conversion.
PIXEL_FORMATS: dict[str, int] = {"Mono8": 1, "RGB8": 3, "BGR8": 3, **{name: 1 for name in _BAYER_CODES}}


def to_frame_image(data: np.ndarray | bytes, height: int, width: int, pixel_format: str) -> np.ndarray:
    """Convert one payload to the Frame layout (always a fresh array, so the buffer can be re-queued at once).

    Args:
        data: the raw payload (at least ``height * width * bytes_per_pixel`` bytes).
        height: image height in pixels.
        width: image width in pixels.
        pixel_format: one of :data:`PIXEL_FORMATS`.

    Returns:
        uint8 ``[H, W, 1]`` for Mono8, ``[H, W, 3]`` RGB otherwise (Bayer is demosaiced with OpenCV).

    Raises:
        CameraError: for an unsupported format or a short payload.
    """
    import cv2

    if pixel_format not in PIXEL_FORMATS:
        raise CameraError(f"pixel format {pixel_format!r} is not supported", hint=f"use one of {list(PIXEL_FORMATS)}")
    raw = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    need = height * width * PIXEL_FORMATS[pixel_format]
    if raw.size < need:
        raise FrameError(f"payload of {raw.size} bytes is short of {need} for {width}x{height} {pixel_format}")
    raw = raw[:need]
    if pixel_format == "Mono8":
        return raw.reshape(height, width, 1).copy()
    if pixel_format == "RGB8":
        return raw.reshape(height, width, 3).copy()
    if pixel_format == "BGR8":
        return cv2.cvtColor(raw.reshape(height, width, 3), cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(raw.reshape(height, width), getattr(cv2, _BAYER_CODES[pixel_format]))


def mosaic(rgb: np.ndarray, pixel_format: str) -> np.ndarray:
    """Sample an RGB image with a Bayer pattern (the inverse of demosaicing; used by tests and twins).

    Args:
        rgb: uint8 ``[H, W, 3]`` with even H and W.
        pixel_format: one of the ``Bayer*8`` formats.

    Returns:
        uint8 ``[H, W]`` raw Bayer image.
    """
    if pixel_format not in _BAYER_CODES:
        raise CameraError(f"pixel format {pixel_format!r} is not a Bayer format", hint=f"use one of {list(_BAYER_CODES)}")
    chan = {"R": 0, "G": 1, "B": 2}
    a, b = chan[pixel_format[5]], chan[pixel_format[6]]  # "BayerRG8": top row R G, bottom row G B
    out = np.empty(rgb.shape[:2], np.uint8)
    out[0::2, 0::2] = rgb[0::2, 0::2, a]
    out[0::2, 1::2] = rgb[0::2, 1::2, b]
    out[1::2, 0::2] = rgb[1::2, 0::2, 2 - b]  # the bottom row holds the opposite colours (R<->B, G stays)
    out[1::2, 1::2] = rgb[1::2, 1::2, 2 - a]
    return out
