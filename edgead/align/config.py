"""Alignment options: the motion model, the coarse method, the pyramid and the quality gate.

Warp convention (the one of ``cv2.findTransformECC``): a warp maps **reference** pixel coordinates to **input
image** coordinates, so the aligned image is ``cv2.warpAffine(image, W, ref_size, flags=INTER_LINEAR |
WARP_INVERSE_MAP)`` (``warpPerspective`` for a homography).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgead.errors import ConfigError


class MotionModel(str, Enum):
    """Degrees of freedom of the part's pose between the reference and a frame."""

    TRANSLATION = "translation"  # 2: dx, dy
    EUCLIDEAN = "euclidean"  # 3: dx, dy, angle (rigid part on a fixture or belt)
    AFFINE = "affine"  # 6: adds scale and shear
    HOMOGRAPHY = "homography"  # 8: a planar part seen from a varying viewpoint


class Coarse(str, Enum):
    """How the initial pose is found before the pyramid refinement."""

    PHASE = "phase"  # phase correlation on a downscaled, windowed image, plus a small rotation search
    ORB = "orb"  # ORB features + RANSAC: robust for large offsets and rotations
    NONE = "none"  # start the refinement at identity (the part is already within a few pixels)


@dataclass(frozen=True)
class AlignConfig:
    """How to align frames to the reference.

    Attributes:
        motion: the motion model the refinement estimates.
        coarse: the coarse method; ``fallback`` is tried when it fails or its response is below
            ``min_coarse_response``.
        fallback: second coarse method (``Coarse.NONE`` for none).
        min_coarse_response: phase-correlation peak response below which the fallback is used.
        pyramid_levels: pyramid levels, full resolution included (each halves the resolution of the one before);
            refinement starts on the last. None: as many as keep the last level's shorter side at 48 px or more.
        finest_level: pyramid level where refinement stops (0 = full resolution, 1 = half); the quality gate is
            measured there. None: the last level whose longer side is still 160 px or more.
        refine_iterations: most refinement steps per pyramid level.
        refine_eps_px: a level is done when a step moves no corner of the reference by more than this, in the
            level's pixels.
        min_quality: the gate: zero-mean normalised correlation of reference and aligned image over the valid area,
            at ``finest_level``.
        max_shift_px: largest accepted displacement of the reference centre, in full-resolution pixels.
        max_rotation_deg: largest accepted rotation; also the range of the coarse rotation search.
        rotation_step_deg: step of the coarse rotation search (phase correlation only).
        downscale: scale of the coarse stage (None: the pyramid level whose longer side is the first at 128 px or
            less).
        orb_features: ORB keypoints on the reference (the frame gets the same number).
    """

    motion: MotionModel = MotionModel.EUCLIDEAN
    coarse: Coarse = Coarse.PHASE
    fallback: Coarse = Coarse.ORB
    min_coarse_response: float = 0.08
    pyramid_levels: int | None = None
    finest_level: int | None = None
    refine_iterations: int = 30
    refine_eps_px: float = 0.01
    min_quality: float = 0.6
    max_shift_px: float = 200.0
    max_rotation_deg: float = 6.0
    rotation_step_deg: float = 1.0
    downscale: float | None = None
    orb_features: int = 1500

    def __post_init__(self) -> None:
        for name in ("motion", "coarse", "fallback"):
            enum = {"motion": MotionModel, "coarse": Coarse, "fallback": Coarse}[name]
            value = getattr(self, name)
            if not isinstance(value, enum):
                try:
                    object.__setattr__(self, name, enum(value))
                except ValueError as exc:
                    raise ConfigError(f"align.{name}={value!r} is unknown",
                                      hint=f"use one of {[m.value for m in enum]}") from exc
        if self.pyramid_levels is not None and self.pyramid_levels < 1:
            raise ConfigError(f"align.pyramid_levels={self.pyramid_levels} must be >= 1")
        if self.finest_level is not None and not (
                0 <= self.finest_level < (self.pyramid_levels if self.pyramid_levels is not None else 16)):
            raise ConfigError(f"align.finest_level={self.finest_level} must be in [0, pyramid_levels)")
        if self.refine_iterations < 1 or not self.refine_eps_px > 0:
            raise ConfigError(f"align: refine_iterations={self.refine_iterations} must be >= 1 and "
                              f"refine_eps_px={self.refine_eps_px} > 0")
        if not -1.0 <= self.min_quality <= 1.0:
            raise ConfigError(f"align.min_quality={self.min_quality} must be a correlation in [-1, 1]")
        if self.downscale is not None and not 0 < self.downscale <= 1:
            raise ConfigError(f"align.downscale={self.downscale} must be in (0, 1]")
        if self.rotation_step_deg <= 0 or self.max_rotation_deg < 0 or self.max_shift_px <= 0:
            raise ConfigError("align: rotation_step_deg and max_shift_px must be > 0, max_rotation_deg >= 0")
