"""Read and write images as uint8 ``HxWxC`` arrays: RGB order (C=3) or grey (C=1). OpenCV does the codecs.

Example:
    >>> img = load_image("part.png", Color.RGB)            # doctest: +SKIP
    >>> img.shape, img.dtype                                # doctest: +SKIP
    ((256, 320, 3), dtype('uint8'))
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from edgead.contract.graph import Color
from edgead.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
"""Suffixes the readers accept (compared case-insensitively)."""

MAX_IMAGE_PX = 50_000_000
"""Largest image (width x height) decoded by default: a file whose header declares more is refused before decoding
(a small PNG can declare 20000x20000 and take gigabytes to decode). Above the largest area-scan inspection sensors."""

GRAY_TOLERANCE = 2
"""A colour image whose channels differ by at most this many levels everywhere counts as grey."""


def is_image_file(path: Path) -> bool:
    """True for a visible file with one of :data:`IMAGE_SUFFIXES` (any case)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def _read_bytes(path: Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"image {str(path)!r} is unreadable: {exc.strerror or exc}",
                         hint="check that the file exists and is readable") from exc
    if not data:
        raise ImageError(f"image {str(path)!r} is empty (0 bytes)", hint="re-capture or delete the file")
    return data


def check_image_size(data: bytes | np.ndarray, name: str, max_px: int | None = MAX_IMAGE_PX) -> tuple[int, int]:
    """The (height, width) an encoded image declares in its header, refused above ``max_px`` before any decoding.

    Args:
        data: the encoded file content (PNG, JPEG or BMP).
        name: how to name the image in error messages.
        max_px: the most pixels (width x height) allowed; None: no limit (the header must still be readable).

    Returns:
        ``(height, width)`` from the header.

    Raises:
        ImageError: when the header is not a PNG, JPEG, BMP, WebP or TIFF header, or declares more than ``max_px`` pixels.
    """
    hw = _header_hw(memoryview(data).cast("B") if isinstance(data, np.ndarray) else data)
    if hw is None or hw[0] <= 0 or hw[1] <= 0:
        raise ImageError(f"image {name} is corrupt or not an image: no PNG, JPEG, BMP, WebP or TIFF header with its size "
                         f"({len(data)} bytes)",
                         hint="re-capture or delete the file; accepted formats: png, jpg, bmp, webp, tiff")
    if max_px is not None and hw[0] * hw[1] > max_px:
        raise ImageError(f"image {name} declares {hw[1]}x{hw[0]} pixels ({hw[0] * hw[1] / 1e6:.0f} MP), above the "
                         f"limit of {max_px / 1e6:g} MP; not decoded",
                         hint="a corrupt or hostile file; if the images really are that large, raise the limit "
                              "(camera.max_image_px, predict --max-image-px)")
    return hw


def _decode_raw(data: bytes, name: str, max_px: int | None = MAX_IMAGE_PX) -> np.ndarray:
    """Decode to OpenCV's native layout (BGR/BGRA/grey, any depth); raises on empty, oversized or corrupt data."""
    if not data:
        raise ImageError(f"image {name} is empty (0 bytes)", hint="re-capture or delete the file")
    check_image_size(data, name, max_px)
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise ImageError(f"image {name} is corrupt or truncated ({len(data)} bytes, cannot be decoded)",
                         hint="re-capture or delete the file; accepted formats: png, jpg, bmp")
    return raw


def _to_uint8(raw: np.ndarray) -> np.ndarray:
    if raw.dtype == np.uint8:
        return raw
    if raw.dtype == np.uint16:
        return (raw >> 8).astype(np.uint8)
    return np.clip(raw, 0, 255).astype(np.uint8)


def _convert(raw: np.ndarray, color: Color) -> np.ndarray:
    img = _to_uint8(raw)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if color is Color.GRAY:
        gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return np.ascontiguousarray(gray[:, :, None])
    rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb)


def decode_image(data: bytes, color: Color, *, name: str = "<bytes>", max_px: int | None = MAX_IMAGE_PX) -> np.ndarray:
    """Decode encoded image bytes (png, jpg, bmp).

    Args:
        data: the encoded file content.
        color: the layout wanted; a colour image asked for as grey is converted (and vice versa).
        name: how to name the image in error messages.
        max_px: refuse an image whose header declares more pixels than this, before decoding (None: no limit).

    Returns:
        uint8 array ``HxWx3`` (RGB order) or ``HxWx1``.

    Raises:
        ImageError: if the data is empty, corrupt, truncated or too large.
    """
    return _convert(_decode_raw(data, name, max_px), Color(color))


def load_image(path: str | os.PathLike, color: Color, *, max_px: int | None = MAX_IMAGE_PX) -> np.ndarray:
    """Read an image file.

    Args:
        path: the image file.
        color: the layout wanted (see :func:`decode_image`).
        max_px: the size limit (see :func:`decode_image`).

    Returns:
        uint8 array ``HxWx3`` (RGB order) or ``HxWx1``.

    Raises:
        ImageError: naming the file, if it is missing, unreadable, empty, corrupt, truncated or too large.
    """
    return decode_image(_read_bytes(Path(path)), color, name=repr(str(path)), max_px=max_px)


def is_gray(path: str | os.PathLike) -> bool:
    """True if the file is single-channel, or colour with (nearly) equal channels.

    Raises:
        ImageError: if the file cannot be read or decoded.
    """
    raw = _to_uint8(_decode_raw(_read_bytes(Path(path)), repr(str(path))))
    if raw.ndim == 2 or raw.shape[2] == 1:
        return True
    b, g, r = (raw[:, :, i].astype(np.int16) for i in range(3))
    return int(max(np.abs(b - g).max(), np.abs(g - r).max())) <= GRAY_TOLERANCE


def _header_hw(head: bytes | memoryview) -> tuple[int, int] | None:
    """(height, width) from a PNG, BMP, JPEG, WebP or TIFF header, or None if the header is not understood."""
    head = bytes(head)
    if len(head) >= 24 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return height, width
    if head[:2] == b"BM" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(height), width
    if head[:2] == b"\xff\xd8":
        return _jpeg_hw(head)
    if len(head) >= 30 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_hw(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_hw(head)
    return None


def _jpeg_hw(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        length = struct.unpack(">H", head[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[i + 5:i + 9])
            return height, width
        i += 2 + length
    return None


def _webp_hw(head: bytes) -> tuple[int, int] | None:
    kind = head[12:16]
    if kind == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return height & 0x3FFF, width & 0x3FFF
    if kind == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(head[27:30], "little") + 1, int.from_bytes(head[24:27], "little") + 1
    return None


def _tiff_hw(head: bytes) -> tuple[int, int] | None:
    order = "<" if head[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(order + "I", head[4:8])
        (count,) = struct.unpack(order + "H", head[ifd:ifd + 2])
        size = {}
        for k in range(count):
            tag, kind, _n, value = struct.unpack(order + "HHI4s", head[ifd + 2 + 12 * k:ifd + 14 + 12 * k])
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
                size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2 if kind == 3 else 4])[0]
    except struct.error:
        return None
    return (size[257], size[256]) if len(size) == 2 else None


def image_hw(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file, from its header when possible (no full decode).

    Raises:
        ImageError: if the file cannot be read or decoded.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise ImageError(f"image {str(path)!r} is unreadable: {exc.strerror or exc}",
                         hint="check that the file exists and is readable") from exc
    hw = _header_hw(head)
    if hw is not None and hw[0] > 0 and hw[1] > 0:
        return hw
    img = load_image(path, Color.GRAY)
    return img.shape[0], img.shape[1]


def encode_image(image: np.ndarray, suffix: str = ".png") -> bytes:
    """Encode a uint8 ``HxWx3`` (RGB) or ``HxWx1``/``HxW`` array.

    Raises:
        ImageError: if the array is not uint8 grey/RGB or the suffix is not supported.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ImageError(f"cannot encode an array of shape {image.shape} and dtype {image.dtype}",
                         hint="pass uint8 HxWx3 (RGB) or HxWx1")
    if suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"cannot write {suffix!r} images", hint=f"use one of {', '.join(IMAGE_SUFFIXES)}")
    native = image[:, :, ::-1] if image.ndim == 3 and image.shape[2] == 3 else image
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, np.ascontiguousarray(native), params)
    if not ok:
        raise ImageError(f"OpenCV could not encode a {suffix} image of shape {image.shape}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an image; the format follows the suffix. Creates missing parent folders.

    Returns:
        The path written.

    Raises:
        ImageError: see :func:`encode_image`.
    """
    path = Path(path)
    data = encode_image(image, path.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
