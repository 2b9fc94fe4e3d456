"""The INT8 calibration set: good images from a folder (or a text file listing them), checked before use.

Format (also in calibration/README.md): a directory of PNG/JPEG/BMP images of **good** parts as the station
sees them (aligned crops, 8-bit, RGB or grey like the bundle), all of one size, at least :data:`MIN_IMAGES`; or a
``.txt`` file with one image path per line (relative paths are relative to the text file; ``#`` starts a comment).
The graph resizes internally, so images are fed at their native size, exactly as the runtime feeds frames.

Example:
    >>> calib = load_calibration_set("calib/", channels=3)          # doctest: +SKIP
    >>> calib.fingerprint[:12], len(calib)                           # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edgead.data.images import Color, decode_image, is_image_file
from edgead.errors import CalibrationError, ImageError
from edgead.infer.layout import Layout, layout_images

MIN_IMAGES = 16
"""Fewer good images than this give unstable activation ranges."""


@dataclass(frozen=True)
class CalibrationSet:
    """Checked calibration images.

    Attributes:
        source: the folder or list file given.
        paths: the image files, sorted.
        images: uint8 ``[N, H, W, C]`` (with a tiling layout: every tile of every image).
        fingerprint: sha256 over the sorted ``name:size:sha256`` lines of the files (recorded in the bundle).
    """

    source: Path
    paths: tuple[Path, ...]
    images: np.ndarray
    fingerprint: str

    def __len__(self) -> int:
        return len(self.paths)

    def batches(self, batch_size: int = 1) -> Iterator[np.ndarray]:
        """Yield uint8 ``[n, H, W, C]`` batches in file order."""
        for i in range(0, len(self.images), batch_size):
            yield self.images[i:i + batch_size]


def _list_files(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.is_file() and is_image_file(p))
    if source.is_file() and source.suffix.lower() == ".txt":
        lines = [ln.split("#", 1)[0].strip() for ln in source.read_text().splitlines()]
        return [p if p.is_absolute() else source.parent / p for p in (Path(ln) for ln in lines if ln)]
    raise CalibrationError(f"calibration set {str(source)!r} is neither a folder nor a .txt list of images",
                           hint="pass --calib DIR with good images (see calibration/README.md)")


def _read(path: Path, source: Path, color: Color) -> tuple[np.ndarray, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"calibration set {str(source)!r}: {path.name} is unreadable ({exc.strerror or exc})",
                               hint="fix or remove the file") from exc
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if raw is None:
        raise CalibrationError(f"calibration set {str(source)!r}: {path.name} is not a decodable image",
                               hint="fix or remove the file")
    if raw.dtype != np.uint8:
        raise CalibrationError(f"calibration set {str(source)!r}: {path.name} is {raw.dtype}, expected 8-bit",
                               hint="save the frames as 8-bit images, as the station sees them")
    channels = 1 if raw.ndim == 2 else raw.shape[2]
    if channels not in (1, 3, 4) or (channels == 1) != (color is Color.GRAY):
        raise CalibrationError(
            f"calibration set {str(source)!r}: {path.name} has {channels} channel(s), "
            f"the model takes {color.channels} ({color.value})",
            hint="use images from the same camera and colour mode as the bundle")
    try:
        img = decode_image(data, color, name=repr(str(path)))
    except ImageError as exc:
        raise CalibrationError(f"calibration set {str(source)!r}: {exc}") from exc
    return img, f"{path.name}:{len(data)}:{hashlib.sha256(data).hexdigest()}"


def load_calibration_set(source: str | os.PathLike, *, channels: int, min_count: int = MIN_IMAGES,
                         max_count: int | None = None, resize_hw: tuple[int, int] | None = None,
                         layout: Layout | None = None) -> CalibrationSet:
    """Read and check a calibration set.

    Args:
        source: a folder of good images, or a ``.txt`` file listing them.
        channels: the bundle's input channels (3 = RGB, 1 = grey).
        min_count: the fewest images accepted.
        max_count: use at most this many (the first in sorted order); default all.
        resize_hw: when the images' sizes differ (real categories often do), resize them all to this (height,
            width) -- the model resolution, which the graph resizes every frame to anyway. None: sizes must agree.
        layout: the bundle's layout (:mod:`edgead.infer.layout`): each image is turned and cut into its tiles, as
            the station feeds the model, so INT8 ranges and the threshold transfer see tiles at native resolution.

    Returns:
        The :class:`CalibrationSet`.

    Raises:
        CalibrationError: naming the folder, when it is missing, has too few images, or an image is unreadable,
            of the wrong channel count or bit depth, or of another size than the others.
    """
    src = Path(source)
    if not src.exists():
        raise CalibrationError(f"calibration set {str(src)!r} does not exist",
                               hint="pass --calib DIR with at least %d good images" % min_count)
    color = Color.GRAY if channels == 1 else Color.RGB
    files = _list_files(src)[:max_count]
    if len(files) < min_count:
        raise CalibrationError(f"calibration set {str(src)!r} has {len(files)} image(s), at least {min_count} needed",
                               hint="add good images of the part (aligned crops as the station sees them)")
    read = [_read(path, src, color) for path in files]
    images, lines = [img for img, _ in read], [line for _, line in read]
    if layout is not None and not layout.is_plain:
        images = [part for img in images for part in layout_images(img, layout)]
    if resize_hw is not None and len({img.shape for img in images}) > 1:
        # mixed sizes: all to the model resolution; one size: as the station feeds them (the graph resizes)
        images = [img if img.shape[:2] == tuple(resize_hw) else cv2.resize(
            img, (resize_hw[1], resize_hw[0]), interpolation=cv2.INTER_AREA).reshape(
            resize_hw[0], resize_hw[1], img.shape[2]) for img in images]
    for path, img in zip(files, images):
        if img.shape != images[0].shape:
            raise CalibrationError(
                f"calibration set {str(src)!r}: {path.name} is {img.shape[1]}x{img.shape[0]}, "
                f"{files[0].name} is {images[0].shape[1]}x{images[0].shape[0]}: all images must have one size",
                hint="use the aligned crops the station feeds the model")
    fingerprint = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
    return CalibrationSet(source=src, paths=tuple(files), images=np.stack(images), fingerprint=fingerprint)
