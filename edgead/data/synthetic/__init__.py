"""A synthetic inspection station: a machined bracket in a fixture, with misalignment, drift, noise and defects.

Deterministic by seed; numpy + OpenCV only. Used by the demo and the fast tests.

Example:
    >>> from edgead.data.synthetic import StationSpec, generate_dataset
    >>> generate_dataset("/tmp/bracket", StationSpec(), n_train=60)   # doctest: +SKIP
"""
from __future__ import annotations

from edgead.data.synthetic.spec import DefectType, Pose, StationSpec, affine_matrix, random_pose
from edgead.data.synthetic.station import part_region, reference_image, render_part
from edgead.data.synthetic.writer import generate_captures, generate_dataset, pose_of

__all__ = [
    "DefectType", "Pose", "StationSpec", "affine_matrix", "generate_captures", "generate_dataset", "part_region",
    "pose_of", "random_pose", "reference_image", "render_part",
]
