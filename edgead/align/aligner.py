"""``Aligner``: built once from the reference image, ``align(frame_image) -> Aligned`` or ``AlignmentError``.

Coarse pose (phase correlation or ORB, with a fallback), then ECC on a pyramid, then the quality gate:
zero-mean normalised correlation of reference and aligned image over the valid area, at half resolution.

Example:
    >>> aligner = Aligner(reference_rgb, AlignConfig(motion=MotionModel.EUCLIDEAN))   # doctest: +SKIP
    >>> aligned = aligner.align(frame.image)                                           # doctest: +SKIP
    >>> aligned.dx, aligned.dy, aligned.angle_deg, aligned.quality                     # doctest: +SKIP
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from edgead.align.coarse import OrbCoarse, PhaseCoarse, scale_matrix
from edgead.align.config import AlignConfig, Coarse, MotionModel
from edgead.align.refine import EccRefiner, project_warp, pyramid, warp_image, zncc
from edgead.errors import AlignmentError, ImageError

MIN_VALID_FRACTION = 0.25  # less of the reference in view than this is not a read


@dataclass(frozen=True)
class Aligned:
    """A frame aligned to the reference.

    Attributes:
        image: the frame resampled onto the reference grid (same size and channels as the reference; pixels the
            frame does not cover repeat its nearest edge pixel).
        warp: reference -> frame warp, 2x3 (3x3 for a homography), float64, full-resolution pixels.
        dx: horizontal displacement of the reference centre in the frame, px.
        dy: vertical displacement of the reference centre in the frame, px.
        angle_deg: rotation of the part in the frame, degrees.
        quality: zero-mean normalised correlation of reference and aligned image over the valid area.
        coarse: the coarse method that gave the starting pose.
        timings_ms: per step: ``coarse``, ``refine``, ``warp``, ``quality``, ``total``.
    """

    image: np.ndarray
    warp: np.ndarray
    dx: float
    dy: float
    angle_deg: float
    quality: float
    coarse: Coarse
    timings_ms: dict = field(default_factory=dict)


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray ``[H, W]`` from ``[H, W]``, ``[H, W, 1]`` or RGB ``[H, W, 3]``.

    Raises:
        ImageError: for another layout or dtype.
    """
    if image.dtype != np.uint8:
        raise ImageError(f"alignment needs uint8 images, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    raise ImageError(f"alignment needs HxW, HxWx1 or HxWx3 images, got shape {image.shape}")


class Aligner:
    """Aligns frames to one reference image (everything about the reference is computed once, here)."""

    def __init__(self, reference: np.ndarray, config: AlignConfig | None = None):
        self.config = config = config or AlignConfig()
        gray = to_gray(reference)
        self.shape = reference.shape
        h, w = gray.shape
        self.size = (w, h)
        self.center = ((w - 1) / 2.0, (h - 1) / 2.0)
        min_side = min(h, w)
        if min_side >> (config.pyramid_levels - 1) < 16:
            raise AlignmentError(f"reference {w}x{h} is too small for {config.pyramid_levels} pyramid levels",
                                 hint="lower align.pyramid_levels")
        self.coarse_scale = config.downscale or min(1.0, 256.0 / max(h, w))
        self.ref_gray = gray.astype(np.float32)
        self.refiner = EccRefiner(self.ref_gray, config)
        self.quality_level = min(1, config.pyramid_levels - 1)
        self._estimators: dict[Coarse, object] = {}
        for method in {config.coarse, config.fallback} - {Coarse.NONE}:
            if method is Coarse.PHASE:
                self._estimators[method] = PhaseCoarse(self.ref_gray, self.coarse_scale, config.max_rotation_deg,
                                                       config.rotation_step_deg)
            else:
                self._estimators[method] = OrbCoarse(gray, min(1.0, 2 * self.coarse_scale), config.orb_features,
                                                     config.motion)

    def _coarse(self, method: Coarse, gray_u8: np.ndarray, gray_f32: np.ndarray) -> tuple[np.ndarray, float] | None:
        if method is Coarse.NONE:
            return np.eye(3), 1.0
        est = self._estimators[method]
        result = est.estimate(gray_f32) if isinstance(est, PhaseCoarse) else est.estimate(gray_u8)
        if result is None:
            return None
        return result.warp, result.response

    def _coarse_pose(self, gray_u8: np.ndarray, gray_f32: np.ndarray) -> tuple[np.ndarray, Coarse]:
        cfg = self.config
        first = self._coarse(cfg.coarse, gray_u8, gray_f32)
        if first is not None and (cfg.coarse is not Coarse.PHASE or first[1] >= cfg.min_coarse_response):
            return first[0], cfg.coarse
        if cfg.fallback not in (Coarse.NONE, cfg.coarse):
            second = self._coarse(cfg.fallback, gray_u8, gray_f32)
            if second is not None:
                return second[0], cfg.fallback
        if first is None:
            raise AlignmentError(f"coarse alignment ({cfg.coarse.value}) found no pose",
                                 hint="check the frame shows the part")
        return first[0], cfg.coarse

    def pose(self, warp: np.ndarray) -> tuple[float, float, float]:
        """``(dx, dy, angle_deg)`` of a 3x3 warp: where the reference centre lands, and the rotation."""
        cx, cy = self.center
        p = warp @ np.array([cx, cy, 1.0])
        angle = math.degrees(math.atan2(warp[1, 0] - warp[0, 1], warp[0, 0] + warp[1, 1]))
        return float(p[0] / p[2] - cx), float(p[1] / p[2] - cy), angle

    def align(self, image: np.ndarray) -> Aligned:
        """Align one frame to the reference.

        Args:
            image: uint8 ``[H, W]``, ``[H, W, 1]`` or RGB ``[H, W, 3]`` of the reference's size.

        Returns:
            The :class:`Aligned` frame with its warp, pose, quality and timings.

        Raises:
            AlignmentError: when the size differs, ECC diverges, the pose is outside ``max_shift_px`` /
                ``max_rotation_deg``, or the quality is below ``min_quality`` (the message gives both).
        """
        cfg, t0 = self.config, time.perf_counter()
        gray = to_gray(image)
        if gray.shape != self.ref_gray.shape:
            raise AlignmentError(f"frame is {gray.shape[1]}x{gray.shape[0]}, the reference {self.size[0]}x"
                                 f"{self.size[1]}", hint="the camera ROI must match the reference image")
        gray_f32 = gray.astype(np.float32)
        coarse_warp, method = self._coarse_pose(gray, gray_f32)
        t1 = time.perf_counter()
        init = project_warp(coarse_warp, cfg.motion, self.center)
        self._check_pose(init, "coarse")
        frame_pyramid = pyramid(gray_f32, cfg.pyramid_levels)
        warp, _ = self.refiner.refine(frame_pyramid, init)
        t2 = time.perf_counter()
        dx, dy, angle = self._check_pose(warp, "refined")
        aligned = warp_image(image, warp, self.size, border_mode=cv2.BORDER_REPLICATE)
        if aligned.ndim == 2 and len(self.shape) == 3:
            aligned = aligned[:, :, None]
        t3 = time.perf_counter()
        quality, valid = self._quality(frame_pyramid, warp)
        t4 = time.perf_counter()
        if valid < MIN_VALID_FRACTION:
            raise AlignmentError(f"only {valid:.0%} of the reference is in view after alignment (quality "
                                 f"{quality:.3f}, gate {cfg.min_quality})", hint="the part is out of the field of view")
        if not quality >= cfg.min_quality:
            raise AlignmentError(f"alignment quality {quality:.3f} is below the gate min_quality={cfg.min_quality} "
                                 f"(dx={dx:.1f}, dy={dy:.1f}, angle={angle:.2f} deg, coarse={method.value})",
                                 hint="a different or missing part, or a changed scene: check the camera")
        out_warp = warp if cfg.motion is MotionModel.HOMOGRAPHY else warp[:2].copy()
        timings = {"coarse": (t1 - t0) * 1e3, "refine": (t2 - t1) * 1e3, "warp": (t3 - t2) * 1e3,
                   "quality": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3}
        return Aligned(aligned, out_warp, dx, dy, angle, quality, method, timings)

    def _check_pose(self, warp: np.ndarray, stage: str) -> tuple[float, float, float]:
        dx, dy, angle = self.pose(warp)
        cfg = self.config
        if not (math.hypot(dx, dy) <= cfg.max_shift_px and abs(angle) <= cfg.max_rotation_deg + 0.5):
            raise AlignmentError(f"{stage} pose dx={dx:.1f}, dy={dy:.1f}, angle={angle:.2f} deg is outside "
                                 f"max_shift_px={cfg.max_shift_px}, max_rotation_deg={cfg.max_rotation_deg}",
                                 hint="the part is misplaced, or it is not the reference part")
        return dx, dy, angle

    def _quality(self, frame_pyramid: list[np.ndarray], warp: np.ndarray) -> tuple[float, float]:
        level = self.quality_level
        scale = 0.5 ** level
        ref, small = self.refiner.ref_pyramid[level], frame_pyramid[level]
        w_level = scale_matrix(scale) @ warp @ np.linalg.inv(scale_matrix(scale))
        size = (ref.shape[1], ref.shape[0])
        aligned = warp_image(small, w_level, size)
        valid = warp_image(np.ones_like(small, np.uint8), w_level, size, cv2.INTER_NEAREST) > 0
        valid = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        return zncc(ref, aligned, valid)
