"""Align a whole dataset to a reference, with the station's own aligner, so that training sees what the
station's model will see: frames resampled onto the reference grid (masks warped with the same warp).

Example:
    >>> report = align_dataset("raw/", "aligned/", "raw/reference.png")   # doctest: +SKIP
    >>> report.n_aligned, report.failed                                    # doctest: +SKIP
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgead.align.aligner import Aligner
from edgead.align.config import AlignConfig
from edgead.align.refine import warp_image
from edgead.data import load_image, load_mask, scan_category, write_image
from edgead.errors import AlignmentError, DataError


@dataclass
class AlignReport:
    """What :func:`align_dataset` did; ``failed`` lists (relative path, reason) of frames left out."""

    n_aligned: int = 0
    qualities: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def align_dataset(src: str | os.PathLike, dst: str | os.PathLike, reference: str | os.PathLike,
                  config: AlignConfig | None = None) -> AlignReport:
    """Write an aligned copy of an MVTec-layout dataset.

    Args:
        src: the dataset of raw captures.
        dst: a new or empty folder for the aligned copy (same layout; ``reference.png`` copied too).
        reference: the reference image of a good part (same size as the captures).
        config: alignment options (the station's ``alignment`` section).

    Returns:
        The :class:`AlignReport`. Frames that fail the quality gate are left out and listed.

    Raises:
        DataError: ``dst`` is not empty, or every training image failed to align.
    """
    category = scan_category(src)
    out = Path(dst)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} is not empty", hint="choose a new folder for the aligned dataset")
    ref = load_image(reference, category.color)
    aligner = Aligner(ref, config or AlignConfig())
    report = AlignReport()
    root = Path(src)
    for sample in (*category.train, *category.test):
        rel = Path(sample.path).relative_to(root)
        image = load_image(sample.path, category.color)
        try:
            aligned = aligner.align(image)
        except AlignmentError as exc:
            report.failed.append((str(rel), exc.message))
            continue
        write_image(out / rel, aligned.image)
        if sample.mask_path is not None:
            mask = load_mask(sample, image.shape[:2]).astype(np.uint8) * 255
            warped = warp_image(mask, _as3x3(aligned.warp), aligner.size, cv2.INTER_NEAREST)
            write_image(out / Path(sample.mask_path).relative_to(root), warped)
        report.n_aligned += 1
        report.qualities.append(aligned.quality)
    if not any(Path(p).parts[0] == "train" for p in _written(out)):
        raise DataError(f"no training image of {src} could be aligned to {reference}",
                        hint="check the reference shows the same part at the same size")
    shutil.copyfile(reference, out / "reference.png") if Path(reference).resolve() != (out / "reference.png") else None
    return report


def _as3x3(warp: np.ndarray) -> np.ndarray:
    return warp if warp.shape == (3, 3) else np.vstack([warp, [0.0, 0.0, 1.0]])


def _written(out: Path) -> list[str]:
    return [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
