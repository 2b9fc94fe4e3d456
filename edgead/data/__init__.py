"""Datasets: the MVTec AD reader, image I/O, the training-data fingerprint (synthetic station: ``.synthetic``).

Example:
    >>> from edgead.data import scan_category, fingerprint
    >>> cat = scan_category("datasets/bracket")          # doctest: +SKIP
    >>> fingerprint(cat.train)                           # doctest: +SKIP
"""
from __future__ import annotations

from edgead.data.fingerprint import file_sha256, fingerprint
from edgead.data.images import (IMAGE_SUFFIXES, Color, decode_image, encode_image, image_hw, is_gray, load_image,
                                write_image)
from edgead.data.mvtec import GOOD, Category, Sample, load_mask, scan_category, scan_good_folder

__all__ = [
    "GOOD", "IMAGE_SUFFIXES", "Category", "Color", "Sample", "decode_image", "encode_image", "file_sha256",
    "fingerprint", "image_hw", "is_gray", "load_image", "load_mask", "scan_category", "scan_good_folder",
    "write_image",
]
