"""Alignment of frames to a reference image: coarse pose, ECC refinement, a quality gate, and ROIs.

Example:
    >>> from edgead.align import Aligner, AlignConfig, MotionModel               # doctest: +SKIP
    >>> aligner = Aligner(reference, AlignConfig(motion=MotionModel.EUCLIDEAN))  # doctest: +SKIP
    >>> aligned = aligner.align(frame.image)  # raises AlignmentError -> the part is "no-read"
"""
from __future__ import annotations

from edgead.align.aligner import Aligned, Aligner
from edgead.align.config import AlignConfig, Coarse, MotionModel
from edgead.align.roi import Roi, check_rois, crop_rois

__all__ = ["AlignConfig", "Aligned", "Aligner", "Coarse", "MotionModel", "Roi", "check_rois", "crop_rois"]
