"""One capture of the synthetic station: defect, misalignment, lighting drift and sensor noise.

Example:
    >>> spec = StationSpec()
    >>> img, mask = render_part(spec, Pose(3.0, -2.0, 1.0), DefectType.DENT, np.random.default_rng(0))
    >>> img.shape, bool(mask.any())
    ((256, 320, 3), True)
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from edgead.data.images import Color
from edgead.data.synthetic.defects import DEFECTS
from edgead.data.synthetic.part import build_scene, shade
from edgead.data.synthetic.spec import DefectType, Pose, StationSpec, affine_matrix

_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def _warp(spec: StationSpec, pose: Pose, image: np.ndarray, border: int) -> np.ndarray:
    if pose.is_identity:
        return image
    return cv2.warpAffine(image, affine_matrix(spec, pose), (spec.width, spec.height), flags=cv2.INTER_LINEAR,
                          borderMode=border)


def _lighting(spec: StationSpec, rng: np.random.Generator) -> tuple[float, float, np.ndarray]:
    """Per-capture gain, offset (grey levels) and a linear gradient across the field of view."""
    d = spec.lighting_drift
    if d == 0:
        return 1.0, 0.0, np.ones((spec.height, spec.width), np.float32)
    gain, offset = 1 + rng.uniform(-d, d), rng.uniform(-d, d) * 60.0
    theta, slope = rng.uniform(0, 2 * np.pi), rng.uniform(-d, d)
    yy, xx = np.mgrid[0:spec.height, 0:spec.width].astype(np.float32)
    ramp = (np.cos(theta) * (xx / spec.width - 0.5) + np.sin(theta) * (yy / spec.height - 0.5))
    return gain, offset, (1 + slope * ramp).astype(np.float32)


def render_part(spec: StationSpec, pose: Pose, defect: DefectType | None,
                rng: np.random.Generator, light: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Capture the part once.

    Args:
        spec: the station.
        pose: the part's misalignment.
        defect: the defect to put on the part, or None for a good part.
        rng: randomness for the defect's shape and place, the lighting drift and the noise.
        light: a slow change of the illumination on top of the per-capture drift (1: none; 0.7: a lamp at 70 %).

    Returns:
        ``(image, mask)``: uint8 ``HxWx3`` (RGB) or ``HxWx1`` (grey), and bool ``HxW``, True on the defect
        (all False for a good part), exact in the coordinates of the returned image.
    """
    scene = build_scene(spec.height, spec.width, spec.part_seed)
    mask = np.zeros((spec.height, spec.width), bool)
    if defect is None:
        albedo, height = scene.albedo, scene.height
    else:
        albedo, height, footprint = DEFECTS[DefectType(defect)](scene, spec, rng)
        mask = _warp(spec, pose, footprint, cv2.BORDER_CONSTANT) >= 0.5
    image = _warp(spec, pose, shade(albedo, height), cv2.BORDER_REFLECT_101)
    gain, offset, ramp = _lighting(spec, rng)
    image = image * (scene.vignette * ramp * (gain * light))[:, :, None] + offset
    if spec.color is Color.GRAY:
        image = image @ _GRAY_WEIGHTS
        image = image[:, :, None]
    if spec.noise_sigma > 0:
        image = image + rng.normal(0.0, spec.noise_sigma, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


def reference_image(spec: StationSpec) -> np.ndarray:
    """The perfectly aligned good part (pose 0), without lighting drift or noise: the aligner's reference.

    Args:
        spec: the station.

    Returns:
        uint8 ``HxWx3`` (RGB) or ``HxWx1`` (grey).
    """
    still = dataclasses.replace(spec, lighting_drift=0.0, noise_sigma=0.0)
    return render_part(still, Pose(), None, np.random.default_rng(0))[0]


def part_region(spec: StationSpec, pose: Pose = Pose()) -> np.ndarray:
    """Where the plate is (holes included) in a capture with this pose.

    Args:
        spec: the station.
        pose: the capture's misalignment.

    Returns:
        bool ``HxW``.
    """
    part = build_scene(spec.height, spec.width, spec.part_seed).part.astype(np.float32)
    return _warp(spec, pose, part, cv2.BORDER_CONSTANT) >= 0.5
