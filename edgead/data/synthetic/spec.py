"""What a synthetic station captures: the station spec, part poses and the defect types."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from edgead.data.images import Color
from edgead.errors import ConfigError

ALIGNED_JITTER_PX = 0.5
"""Residual shift (each axis) of ``aligned`` images: what a good aligner leaves."""

ALIGNED_JITTER_DEG = 0.05
"""Residual rotation of ``aligned`` images."""


class DefectType(str, Enum):
    """Defects the synthetic station can put on a part (the value is the ``test/<type>`` folder name)."""

    SCRATCH = "scratch"
    DENT = "dent"
    MISSING_HOLE = "missing_hole"
    CONTAMINATION = "contamination"


@dataclass(frozen=True)
class Pose:
    """Misalignment of a capture relative to the reference.

    The reference image is rotated by ``angle_deg`` (counter-clockwise as displayed, OpenCV convention) about
    the image centre, then shifted by ``(dx, dy)`` pixels (x right, y down).
    """

    dx: float = 0.0
    dy: float = 0.0
    angle_deg: float = 0.0

    @property
    def is_identity(self) -> bool:
        """True for the reference pose."""
        return self.dx == 0.0 and self.dy == 0.0 and self.angle_deg == 0.0

    def to_dict(self) -> dict[str, float]:
        """JSON-friendly form, rounded to 1/1000 px and degree."""
        return {"dx": round(self.dx, 3), "dy": round(self.dy, 3), "angle_deg": round(self.angle_deg, 3)}


@dataclass(frozen=True)
class StationSpec:
    """A synthetic inspection station: image size, colour, how much captures vary, which defects occur.

    Attributes:
        height: image height in pixels (>= 96).
        width: image width in pixels (>= 120).
        color: RGB or grey camera.
        max_shift_px: largest part shift of a raw capture, per axis (<= 1/8 of the smaller side).
        max_rotation_deg: largest part rotation of a raw capture (<= 10).
        lighting_drift: relative gain, offset and gradient drift of the illumination per capture (< 0.5).
        noise_sigma: sensor noise, standard deviation in grey levels.
        defect_types: the defects generated.
        part_seed: the part's design (texture, marking); the same seed is the same part.

    Raises:
        ConfigError: naming the field, if a value is out of range.
    """

    height: int = 256
    width: int = 320
    color: Color = Color.RGB
    max_shift_px: float = 12.0
    max_rotation_deg: float = 3.0
    lighting_drift: float = 0.08
    noise_sigma: float = 2.0
    defect_types: tuple[DefectType, ...] = field(default_factory=lambda: tuple(DefectType))
    part_seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "color", _enum(Color, self.color, "color"))
        types = tuple(_enum(DefectType, t, "defect_types") for t in self.defect_types)
        object.__setattr__(self, "defect_types", types)
        checks = {
            "height": (self.height >= 96, ">= 96"),
            "width": (self.width >= 120, ">= 120"),
            "max_shift_px": (0 <= self.max_shift_px <= min(self.height, self.width) / 8, "in [0, min(h, w)/8]"),
            "max_rotation_deg": (0 <= self.max_rotation_deg <= 10, "in [0, 10]"),
            "lighting_drift": (0 <= self.lighting_drift < 0.5, "in [0, 0.5)"),
            "noise_sigma": (0 <= self.noise_sigma <= 50, "in [0, 50]"),
            "defect_types": (len(types) > 0, "not empty"),
        }
        for name, (ok, want) in checks.items():
            if not ok:
                raise ConfigError(f"StationSpec.{name}={getattr(self, name)!r} is out of range", hint=f"use {want}")

    @property
    def scale(self) -> float:
        """Size of the part's features relative to the default 256x320 station."""
        return min(self.height / 256.0, self.width / 320.0)


def _enum(kind: type[Enum], value: object, name: str):
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(v.value) for v in kind)  # type: ignore[attr-defined]
        raise ConfigError(f"StationSpec.{name}: unknown value {value!r}", hint=f"use one of {allowed}") from None


def random_pose(spec: StationSpec, rng: np.random.Generator, *, aligned: bool) -> Pose:
    """Draw the misalignment of one capture.

    Args:
        spec: the station (``max_shift_px``, ``max_rotation_deg``).
        rng: the random generator.
        aligned: True for the residual of an aligned image (<= 0.5 px, <= 0.05 deg), False for a raw capture.

    Returns:
        The pose, uniform within the limits.
    """
    shift = min(ALIGNED_JITTER_PX, spec.max_shift_px) if aligned else spec.max_shift_px
    angle = min(ALIGNED_JITTER_DEG, spec.max_rotation_deg) if aligned else spec.max_rotation_deg
    dx, dy = rng.uniform(-shift, shift, 2) if shift > 0 else (0.0, 0.0)
    deg = rng.uniform(-angle, angle) if angle > 0 else 0.0
    return Pose(float(dx), float(dy), float(deg))


def affine_matrix(spec: StationSpec, pose: Pose) -> np.ndarray:
    """The 2x3 matrix mapping reference pixel coordinates to capture pixel coordinates."""
    cx, cy = (spec.width - 1) / 2.0, (spec.height - 1) / 2.0
    a = math.radians(pose.angle_deg)
    cos, sin = math.cos(a), math.sin(a)
    return np.array([[cos, sin, (1 - cos) * cx - sin * cy + pose.dx],
                     [-sin, cos, sin * cx + (1 - cos) * cy + pose.dy]], np.float64)
