"""Scan datasets in the MVTec AD layout (or a plain folder of good images) and load their masks.

Layout::

    ROOT/train/good/*                                  good images (the only thing training needs)
    ROOT/train/<defect_type>/*                         optional labelled defects (supervised models only)
    ROOT/test/good/*, ROOT/test/<defect_type>/*        evaluation images
    ROOT/ground_truth/<defect_type>/<stem>_mask.png    0 = normal, >0 = defect

Example:
    >>> cat = scan_category("datasets/bracket")             # doctest: +SKIP
    >>> len(cat.train), cat.color, cat.median_hw            # doctest: +SKIP
    (60, <Color.RGB: 'rgb'>, (256, 320))
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgead.data.images import IMAGE_SUFFIXES, Color, image_hw, is_gray, is_image_file, load_image
from edgead.errors import DataError, ImageError, short_path

GOOD = "good"
"""The defect type of normal images."""

MIN_SIDE_PX = 32
"""The smallest training image side: one cell of the backbone's coarsest feature grid (stride 32)."""

COLOR_SAMPLES = 16
"""How many images (spread over the dataset) decide whether a category is grey."""

_SUFFIX_HINT = "/".join(s.lstrip(".") for s in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class Sample:
    """One image of a dataset.

    Attributes:
        path: the image file.
        label: 0 good, 1 defective.
        defect_type: ``"good"`` or the name of the ``test/<type>`` folder.
        mask_path: the ground-truth mask, or None (good images; defective images without a mask).
    """

    path: Path
    label: int
    defect_type: str
    mask_path: Path | None = None


@dataclass(frozen=True)
class Category:
    """A scanned dataset (one MVTec category).

    Attributes:
        root: the dataset folder.
        name: its folder name.
        train: good training images, sorted by path (the only training data of the unsupervised models).
        test: evaluation images (good and defective), sorted by type then path; empty for train-only data.
        color: grey if every sampled image is single-channel or has equal channels, else RGB.
        median_hw: median (height, width) of the training images.
        warnings: problems that do not stop training (e.g. defective images without a mask).
        train_defective: labelled defective training images from ``train/<defect_type>/`` (label 1, sorted by type
            then path; masks from ``ground_truth/<defect_type>/`` when present); only supervised models read them.
    """

    root: Path
    name: str
    train: tuple[Sample, ...]
    test: tuple[Sample, ...]
    color: Color
    median_hw: tuple[int, int]
    warnings: tuple[str, ...] = ()
    train_defective: tuple[Sample, ...] = ()

    @property
    def defect_types(self) -> tuple[str, ...]:
        """The defect types present in the test split (without ``good``), sorted."""
        return tuple(sorted({s.defect_type for s in self.test if s.label == 1}))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def _find_mask(gt_dir: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (gt_dir / f"{stem}_mask{suffix}", gt_dir / f"{stem}_mask{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _detect_color(samples: list[Sample]) -> Color:
    step = max(1, len(samples) // COLOR_SAMPLES)
    picked = samples[::step][:COLOR_SAMPLES]
    return Color.GRAY if all(is_gray(s.path) for s in picked) else Color.RGB


def _median_hw(samples: tuple[Sample, ...]) -> tuple[int, int]:
    """The median (height, width) of the training images.

    Raises:
        DataError: if an image is smaller than :data:`MIN_SIDE_PX` on a side (naming it and how many are).
    """
    sizes = np.array([image_hw(s.path) for s in samples])
    small = np.flatnonzero(sizes.min(axis=1) < MIN_SIDE_PX)
    if small.size:
        h, w = sizes[small[0]]
        raise DataError(f"{short_path(samples[small[0]].path)} is {w}x{h} px ({small.size} of {len(samples)} training "
                        f"images are below {MIN_SIDE_PX} px on a side): too small to show a part",
                        hint="train on the camera's images of whole parts (or crops of them), not thumbnails")
    return int(np.median(sizes[:, 0])), int(np.median(sizes[:, 1]))


def _scan_good(folder: Path, what: str) -> tuple[Sample, ...]:
    if not folder.is_dir():
        raise DataError(f"{what}: folder {str(folder)!r} does not exist",
                        hint="expected the MVTec AD layout ROOT/train/good/*.png; "
                             "for a plain folder of good images use scan_good_folder()")
    train = tuple(Sample(p, 0, GOOD) for p in _images_in(folder))
    if not train:
        raise DataError(f"{what}: {str(folder)!r} holds no images ({_SUFFIX_HINT})",
                        hint="put the good parts' images there (at least 8; more is better)")
    return train


def _scan_typed(split_dir: Path, gt_root: Path, *, with_good: bool) -> tuple[list[Sample], dict[str, int]]:
    """Samples of ``split_dir/<type>/`` (``good`` too when ``with_good``) and the count of unmasked defects per type."""
    samples: list[Sample] = []
    unmasked: dict[str, int] = {}
    for type_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        kind = type_dir.name
        if kind == GOOD and not with_good:
            continue
        for path in _images_in(type_dir):
            if kind == GOOD:
                samples.append(Sample(path, 0, GOOD))
                continue
            mask = _find_mask(gt_root / kind, path.stem)
            if mask is None:
                unmasked[kind] = unmasked.get(kind, 0) + 1
            samples.append(Sample(path, 1, kind, mask))
    return samples, unmasked


def _scan_test(root: Path) -> tuple[tuple[Sample, ...], list[str]]:
    test_dir = root / "test"
    if not test_dir.is_dir():
        return (), []
    samples, unmasked = _scan_typed(test_dir, root / "ground_truth", with_good=True)
    warnings = [f"{n} defective test image(s) of type {kind!r} have no mask in ground_truth/{kind}/ "
                f"(expected <stem>_mask.png); pixel metrics skip them" for kind, n in sorted(unmasked.items())]
    return tuple(samples), warnings


def _scan_train_defective(root: Path) -> tuple[Sample, ...]:
    """Labelled defects in ``train/<defect_type>/`` (every folder but ``good``); masks are optional there."""
    return tuple(_scan_typed(root / "train", root / "ground_truth", with_good=False)[0])


def scan_category(root: str | os.PathLike) -> Category:
    """Scan a dataset in the MVTec AD layout.

    Args:
        root: the category folder (holding ``train/good``, optionally ``test`` and ``ground_truth``).

    Returns:
        The :class:`Category`; mask files whose image does not exist are ignored. Images in ``train/<type>/``
        folders other than ``good`` are listed in ``train_defective`` (label 1), never in ``train``.

    Raises:
        DataError: if the folder or ``train/good`` is missing, or ``train/good`` holds no images.
        ImageError: if a sampled image cannot be decoded.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {str(root)!r} does not exist",
                        hint="check the path; expected ROOT/train/good/*.png (MVTec AD layout)")
    train = _scan_good(root / "train" / GOOD, f"dataset {str(root)!r}")
    test, warnings = _scan_test(root)
    return Category(root=root, name=root.name, train=train, test=test,
                    color=_detect_color(list(train) + list(test)), median_hw=_median_hw(train),
                    warnings=tuple(warnings), train_defective=_scan_train_defective(root))


def scan_good_folder(folder: str | os.PathLike) -> Category:
    """Scan a plain folder of good images (train-only data, no test split).

    Args:
        folder: a folder of images (not searched recursively).

    Returns:
        A :class:`Category` with an empty ``test``.

    Raises:
        DataError: if the folder is missing or holds no images.
    """
    folder = Path(folder)
    train = _scan_good(folder, f"good-image folder {str(folder)!r}")
    return Category(root=folder, name=folder.name, train=train, test=(), color=_detect_color(list(train)),
                    median_hw=_median_hw(train))


def load_mask(sample: Sample, hw: tuple[int, int]) -> np.ndarray:
    """The defect mask of a sample, at the size of its image.

    Args:
        sample: the sample.
        hw: (height, width) of the sample's image, as loaded.

    Returns:
        bool array ``HxW``: all False for good samples and for defective samples without a mask.

    Raises:
        ImageError: if the mask cannot be read or its size differs from ``hw``.
    """
    height, width = hw
    if sample.mask_path is None:
        return np.zeros((height, width), bool)
    raw = load_image(sample.mask_path, Color.GRAY)[:, :, 0]
    if raw.shape != (height, width):
        raise ImageError(f"mask {str(sample.mask_path)!r} is {raw.shape[0]}x{raw.shape[1]} "
                         f"but image {str(sample.path)!r} is {height}x{width}",
                         hint="masks must have exactly the size of their image")
    return raw > 0 if raw.max() <= 1 else raw >= 128
