"""Alignment options: the motion model, the coarse method, the pyramid and the quality gate.

Warp convention (the one of ``cv2.findTransformECC``): a warp maps **reference** pixel coordinates to **input
image** coordinates, so the aligned image is ``cv2.warpAffine(image, W, ref_size, flags=INTER_LINEAR |
WARP_INVERSE_MAP)`` (``warpPerspective`` for a homography).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from edgead.errors import ConfigError


MAX_ROTATION_CANDIDATES = 181  # phase correlations per frame in the coarse rotation search (+-90 deg at 1 deg)
MAX_PYRAMID_LEVELS = 8
MAX_REFINE_ITERATIONS = 10_000
MAX_ORB_FEATURES = 100_000


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
    refine_eps_px: float = 0.05
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
                    raise ConfigError(f"alignment.{name}={value!r} is unknown",
                                      hint=f"use one of {[m.value for m in enum]}") from exc
        for name in ("min_coarse_response", "refine_eps_px", "min_quality", "max_shift_px", "max_rotation_deg",
                     "rotation_step_deg") + (("downscale",) if self.downscale is not None else ()):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"alignment.{name}={getattr(self, name)} must be a finite number")
        if self.pyramid_levels is not None and not 1 <= self.pyramid_levels <= MAX_PYRAMID_LEVELS:
            raise ConfigError(f"alignment.pyramid_levels={self.pyramid_levels} must be in 1..{MAX_PYRAMID_LEVELS}")
        if self.finest_level is not None and not (
                0 <= self.finest_level < (self.pyramid_levels if self.pyramid_levels is not None else 16)):
            raise ConfigError(f"alignment.finest_level={self.finest_level} must be in [0, pyramid_levels)")
        if not 1 <= self.refine_iterations <= MAX_REFINE_ITERATIONS:
            raise ConfigError(f"alignment.refine_iterations={self.refine_iterations} must be in "
                              f"1..{MAX_REFINE_ITERATIONS}", hint="each iteration costs time on every frame")
        if not self.refine_eps_px > 0:
            raise ConfigError(f"alignment.refine_eps_px={self.refine_eps_px} must be > 0")
        if not -1.0 <= self.min_quality <= 1.0:
            raise ConfigError(f"alignment.min_quality={self.min_quality} must be a correlation in [-1, 1]")
        if not 0.0 <= self.min_coarse_response <= 1.0:
            raise ConfigError(f"alignment.min_coarse_response={self.min_coarse_response} must be in [0, 1]")
        if self.downscale is not None and not 0 < self.downscale <= 1:
            raise ConfigError(f"alignment.downscale={self.downscale} must be in (0, 1]")
        if not self.max_shift_px > 0:
            raise ConfigError(f"alignment.max_shift_px={self.max_shift_px} must be > 0")
        if not 0 <= self.max_rotation_deg <= 180:
            raise ConfigError(f"alignment.max_rotation_deg={self.max_rotation_deg} must be in [0, 180]")
        if not self.rotation_step_deg > 0:
            raise ConfigError(f"alignment.rotation_step_deg={self.rotation_step_deg} must be > 0")
        if not 1 <= self.orb_features <= MAX_ORB_FEATURES:
            raise ConfigError(f"alignment.orb_features={self.orb_features} must be in 1..{MAX_ORB_FEATURES}")
        if Coarse.PHASE in (self.coarse, self.fallback):
            n = self.rotation_candidates
            if n > MAX_ROTATION_CANDIDATES:
                raise ConfigError(
                    f"alignment.rotation_step_deg={self.rotation_step_deg:g} with max_rotation_deg="
                    f"{self.max_rotation_deg:g} makes {n:.3g} rotation candidates per frame (at most "
                    f"{MAX_ROTATION_CANDIDATES}: each is one phase correlation per part)",
                    hint=f"raise rotation_step_deg to at least "
                         f"{2 * self.max_rotation_deg / (MAX_ROTATION_CANDIDATES - 1):.3g}, or use coarse: orb "
                         "for large rotations")

    @property
    def rotation_candidates(self) -> float:
        """Angles the phase-correlation search tries per frame (0 and +-k * step up to max_rotation_deg); a float
        so that a tiny step does not build a huge integer."""
        return 1 + 2 * math.floor(self.max_rotation_deg / self.rotation_step_deg + 1e-9)
