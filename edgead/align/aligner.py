"""``Aligner``: built once from the reference image, ``align(frame_image) -> Aligned`` or ``AlignmentError``.

Everything about the reference is prepared once (its pyramid, the turned references of the coarse search, the
steepest-descent images of the refinement). Per frame: a gray pyramid, a coarse pose on its small level (phase
correlation, or ORB as the fallback), the pyramid refinement down to ``finest_level``, whose last step also gives
the quality of the gate, and then one resampling at full resolution: of the whole frame (:meth:`Aligner.align`), or
of the ROIs only (:meth:`Aligner.register` then :meth:`Aligner.resample`).

Example:
    >>> aligner = Aligner(reference_rgb, AlignConfig(motion=MotionModel.EUCLIDEAN))   # doctest: +SKIP
    >>> aligned = aligner.align(frame.image)                                           # doctest: +SKIP
    >>> aligned.dx, aligned.dy, aligned.angle_deg, aligned.quality                     # doctest: +SKIP
    >>> reg = aligner.register(frame.image)                                            # doctest: +SKIP
    >>> crops = aligner.resample(frame.image, reg, rois)   # only the ROIs' pixels      # doctest: +SKIP
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from edgead.align.coarse import OrbCoarse, PhaseCoarse, resize_to
from edgead.align.config import AlignConfig, Coarse, MotionModel
from edgead.align.refine import MIN_LEVEL_PX, PyramidRefiner, centre_pose, project_warp, pyramid, warp_image
from edgead.align.roi import Roi
from edgead.errors import AlignmentError, ImageError

COARSE_MAX_PX = 128
"""Default coarse stage: the first pyramid level whose longer side is at most this."""
REFINE_MIN_PX = 160
"""Default ``finest_level``: the last pyramid level whose longer side is at least this."""
CENTRE_ITERATIONS = 10
"""Most refinement steps per level from the centre of the rotation search; a start that needs more is left to the
search (the refinement from its pose)."""


@dataclass(frozen=True)
class Registration:
    """Where the reference lies in a frame, without resampling the frame.

    Attributes:
        warp: reference -> frame warp, 3x3, float64, full-resolution pixels.
        dx: horizontal displacement of the reference centre in the frame, px.
        dy: vertical displacement of the reference centre in the frame, px.
        angle_deg: rotation of the part in the frame, degrees.
        quality: zero-mean normalised correlation of reference and warped frame over the valid area, at
            ``finest_level``.
        coarse: the coarse method that gave the starting pose.
        timings_ms: per step: ``coarse`` (gray, pyramid, coarse pose), ``refine``, ``total``.
        coarse_tries: the angles the phase correlation tried for this frame (0 without it): 1 when the pose at the
            centre of the rotation search refined to a fit that passed, more when the search ran.
    """

    warp: np.ndarray
    dx: float
    dy: float
    angle_deg: float
    quality: float
    coarse: Coarse
    timings_ms: dict = field(default_factory=dict)
    coarse_tries: int = 0


@dataclass(frozen=True)
class Aligned(Registration):
    """A frame aligned to the reference: its :class:`Registration`, and the frame resampled.

    Attributes:
        image: the frame resampled onto the reference grid (same size and channels as the reference; pixels the
            frame does not cover repeat its nearest edge pixel).
        warp: as the registration's, but 2x3 unless the motion model is a homography.
        timings_ms: the registration's, plus ``warp`` (the resampling); ``total`` includes it.
    """

    image: np.ndarray | None = None


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


def plan_levels(shape: tuple[int, int], config: AlignConfig) -> tuple[int, int, int]:
    """``(levels, finest, coarse)``: the pyramid depth, the finest refined level and the coarse stage's level
    (-1: the coarse stage resizes by ``config.downscale``) for a reference of ``shape`` = (H, W).

    Raises:
        AlignmentError: the reference is too small for ``config.pyramid_levels``.
    """
    h, w = shape
    longest, shortest = max(h, w), min(h, w)
    if config.pyramid_levels is None:
        levels = 1
        while shortest >> levels >= MIN_LEVEL_PX:
            levels += 1
    else:
        levels = config.pyramid_levels
        if shortest >> (levels - 1) < 16:
            raise AlignmentError(f"reference {w}x{h} is too small for {levels} pyramid levels",
                                 hint="lower align.pyramid_levels")
    if config.finest_level is None:
        finest = 0
        while finest + 1 < levels and longest >> (finest + 1) >= REFINE_MIN_PX:
            finest += 1
    else:
        finest = min(config.finest_level, levels - 1)
    coarse = -1
    if config.downscale is None:
        coarse = 0
        while coarse + 1 < levels and longest >> coarse > COARSE_MAX_PX:
            coarse += 1
    return levels, finest, coarse


def resample_onto(image: np.ndarray, warp: np.ndarray, size: tuple[int, int],
                  out: np.ndarray | None = None) -> np.ndarray:
    """A whole frame resampled onto the reference grid (``size`` = its width, height) along a 3x3 reference ->
    frame ``warp``, keeping a trailing channel axis; uncovered pixels repeat the nearest edge pixel.

    What :meth:`Aligner.resample` does without ROIs, as a plain function: the station's image writer calls it on
    its own thread for a station that resampled only its ROIs. ``out`` (the frame's shape and dtype at ``size``)
    receives the pixels instead of a new array (the station's :class:`~edgead.align.ring.FrameRing`).
    """
    aligned = warp_image(image, warp, size, border_mode=cv2.BORDER_REPLICATE, out=out)
    return aligned[:, :, None] if aligned.ndim == 2 and image.ndim == 3 else aligned


class Aligner:
    """Aligns frames to one reference image (everything about the reference is computed once, here).

    Args:
        reference: uint8 ``[H, W]``, ``[H, W, 1]`` or RGB ``[H, W, 3]``.
        config: the alignment options.

    Raises:
        AlignmentError: the reference is too small for the pyramid. ImageError: a bad layout or dtype.
    """

    def __init__(self, reference: np.ndarray, config: AlignConfig | None = None):
        self.config = config = config or AlignConfig()
        gray = to_gray(reference)
        self.shape = reference.shape
        h, w = gray.shape
        self.size = (w, h)
        self.center = ((w - 1) / 2.0, (h - 1) / 2.0)
        self.levels, self.finest, self.coarse_level = plan_levels((h, w), config)
        coarsest = self.levels - 1
        while coarsest > self.finest and min(h, w) >> coarsest < MIN_LEVEL_PX:
            coarsest -= 1  # an explicit pyramid_levels deeper than a stable solve allows
        ref_pyramid = pyramid(gray.astype(np.float32), self.levels)
        self.refiner = PyramidRefiner(ref_pyramid, config.motion, coarsest, self.finest, config.refine_iterations,
                                      config.refine_eps_px)
        if self.coarse_level >= 0:
            self.coarse_scale = 0.5 ** self.coarse_level
            coarse_ref = ref_pyramid[self.coarse_level]
        else:
            self.coarse_scale = float(config.downscale)
            coarse_ref = resize_to(ref_pyramid[0], self.coarse_scale)
        self._depth = max(coarsest, self.coarse_level) + 1
        self._estimators: dict[Coarse, object] = {}
        for method in {config.coarse, config.fallback} - {Coarse.NONE}:
            if method is Coarse.PHASE:
                self._estimators[method] = PhaseCoarse(coarse_ref, self.coarse_scale, config.max_rotation_deg,
                                                       config.rotation_step_deg, config.min_coarse_response)
            else:
                self._estimators[method] = OrbCoarse(gray, min(1.0, max(2 * self.coarse_scale, 256 / max(h, w))),
                                                     config.orb_features, config.motion)

    def _coarse_image(self, frame_pyramid: list[np.ndarray]) -> np.ndarray:
        if self.coarse_level < 0:
            return resize_to(frame_pyramid[0], self.coarse_scale).astype(np.float32)
        return frame_pyramid[self.coarse_level]

    def _coarse(self, method: Coarse, gray_u8: np.ndarray, frame_pyramid: list[np.ndarray]):
        if method is Coarse.NONE:
            return np.eye(3), 1.0, 0
        est = self._estimators[method]
        if isinstance(est, PhaseCoarse):
            result = est.estimate(self._coarse_image(frame_pyramid))
            return result.warp, result.response, result.tries
        result = est.estimate(gray_u8)
        if result is None:
            return None
        return result.warp, result.response, 0

    def _coarse_pose(self, gray_u8: np.ndarray, frame_pyramid: list[np.ndarray]) -> tuple[np.ndarray, Coarse, int]:
        """The coarse search: ``(warp, method, phase-correlation tries)``."""
        cfg = self.config
        first = self._coarse(cfg.coarse, gray_u8, frame_pyramid)
        tries = first[2] if first is not None else 0
        if first is not None and (cfg.coarse is not Coarse.PHASE or first[1] >= cfg.min_coarse_response):
            return first[0], cfg.coarse, tries
        if cfg.fallback not in (Coarse.NONE, cfg.coarse):
            second = self._coarse(cfg.fallback, gray_u8, frame_pyramid)
            if second is not None:
                return second[0], cfg.fallback, tries + second[2]
        if first is None:
            raise AlignmentError(f"coarse alignment ({cfg.coarse.value}) found no pose",
                                 hint="check the frame shows the part")
        return first[0], cfg.coarse, tries

    def pose(self, warp: np.ndarray) -> tuple[float, float, float]:
        """``(dx, dy, angle_deg)`` of a 3x3 warp: where the reference centre lands, and the rotation."""
        x, y, angle = centre_pose(warp, self.center)
        return x - self.center[0], y - self.center[1], math.degrees(angle)

    def register(self, image: np.ndarray) -> Registration:
        """Find the reference in a frame and gate the fit, without resampling the frame.

        With phase correlation, the pose at the centre of the rotation search (one correlation) is refined first;
        only when that refinement fails, does not converge within :data:`CENTRE_ITERATIONS` steps per level, or its
        fit fails the pose limits or the quality gate, does the rotation search run (and the ORB fallback, as
        configured), and the refinement from its pose decides.

        Args:
            image: uint8 ``[H, W]``, ``[H, W, 1]`` or RGB ``[H, W, 3]`` of the reference's size.

        Returns:
            The :class:`Registration`: warp, pose, quality and timings.

        Raises:
            AlignmentError: when the size differs, the refinement fails, the pose is outside ``max_shift_px`` /
                ``max_rotation_deg``, too little of the reference is in view, or the quality is below
                ``min_quality`` (the message gives both).
        """
        cfg, t0 = self.config, time.perf_counter()
        gray = to_gray(image)
        if gray.shape != (self.size[1], self.size[0]):
            raise AlignmentError(f"frame is {gray.shape[1]}x{gray.shape[0]}, the reference {self.size[0]}x"
                                 f"{self.size[1]}", hint="the camera ROI must match the reference image")
        frame_pyramid = self._frame_pyramid(gray)
        phase = self._estimators.get(Coarse.PHASE) if cfg.coarse is Coarse.PHASE else None
        refine_s = 0.0
        if phase is not None and len(phase.steps) > 1:
            centre = phase.centre(self._coarse_image(frame_pyramid))
            if centre.response >= cfg.min_coarse_response:
                t1 = time.perf_counter()
                try:
                    return self._fit(frame_pyramid, centre.warp, Coarse.PHASE, 1, (t1 - t0, 0.0, t1),
                                     CENTRE_ITERATIONS)
                except AlignmentError:
                    refine_s = time.perf_counter() - t1  # the search decides
        coarse_warp, method, tries = self._coarse_pose(gray, frame_pyramid)
        t1 = time.perf_counter()
        return self._fit(frame_pyramid, coarse_warp, method, tries, (t1 - t0 - refine_s, refine_s, t1))

    def _fit(self, frame_pyramid: list[np.ndarray], coarse_warp: np.ndarray, method: Coarse, tries: int,
             spent: tuple[float, float, float], iterations: int | None = None) -> Registration:
        """Refine a coarse pose and gate the fit. ``spent``: seconds of coarse work and of an earlier refinement
        before, and the clock when the refinement starts. ``iterations``: most steps per level, and the refinement
        must converge within them."""
        cfg = self.config
        init = project_warp(coarse_warp, cfg.motion, self.center)
        self._check_pose(init, "coarse")
        refined = self.refiner.refine(frame_pyramid, init, iterations)
        t2 = time.perf_counter()
        if iterations is not None and not refined.converged:
            raise AlignmentError(f"refinement did not converge within {iterations} steps per level",
                                 hint="check the frame shows the part")
        warp, quality = refined.warp, refined.quality
        dx, dy, angle = self._check_pose(warp, "refined")
        if not quality >= cfg.min_quality:
            raise AlignmentError(f"alignment quality {quality:.3f} is below the gate min_quality={cfg.min_quality} "
                                 f"(dx={dx:.1f}, dy={dy:.1f}, angle={angle:.2f} deg, coarse={method.value})",
                                 hint="a different or missing part, or a changed scene: check the camera")
        coarse_s, before_s, t1 = spent
        refine_s = before_s + t2 - t1
        timings = {"coarse": coarse_s * 1e3, "refine": refine_s * 1e3, "total": (coarse_s + refine_s) * 1e3}
        return Registration(warp, dx, dy, angle, quality, method, timings, tries)

    def _frame_pyramid(self, gray: np.ndarray) -> list[np.ndarray]:
        """The float32 levels the coarse stage and the refinement read: built on uint8 down to the first level
        they need, so that a 5 MP frame is never converted to float at full resolution unless it is refined there."""
        first = min(self.finest, self.coarse_level) if self.coarse_level >= 0 else self.finest
        levels = pyramid(gray, self._depth)
        return [lv.astype(np.float32) if i >= first else lv for i, lv in enumerate(levels)]

    def resample(self, image: np.ndarray, registration: Registration, rois: Sequence[Roi] | None = None,
                 out: np.ndarray | None = None) -> np.ndarray | list[np.ndarray]:
        """Resample a frame onto the reference grid along a registration's warp.

        Args:
            image: the frame given to :meth:`register`.
            registration: its result.
            rois: ROIs already checked against the reference size (:func:`edgead.align.check_rois`). Given, only
                their pixels are resampled, each onto its own canvas.
            out: without ROIs, the array that receives the aligned image (the frame's dtype and channels at the
                reference's size), instead of a new one.

        Returns:
            The aligned image (the reference's shape), or one aligned crop per ROI, in order.
        """
        warp = registration.warp
        if rois is None:
            return self._channels(resample_onto(image, warp, self.size, out))
        crops = []
        for roi in rois:
            shift = np.array([[1.0, 0.0, roi.x], [0.0, 1.0, roi.y], [0.0, 0.0, 1.0]])
            crop = warp_image(image, warp @ shift, (roi.width, roi.height), border_mode=cv2.BORDER_REPLICATE)
            crops.append(self._channels(crop))
        return crops

    def _channels(self, aligned: np.ndarray) -> np.ndarray:
        return aligned[:, :, None] if aligned.ndim == 2 and len(self.shape) == 3 else aligned

    def align(self, image: np.ndarray) -> Aligned:
        """Align one frame to the reference: :meth:`register`, then :meth:`resample` the whole frame.

        Args:
            image: uint8 ``[H, W]``, ``[H, W, 1]`` or RGB ``[H, W, 3]`` of the reference's size.

        Returns:
            The :class:`Aligned` frame with its warp, pose, quality and timings.

        Raises:
            AlignmentError: as :meth:`register`.
        """
        reg = self.register(image)
        t = time.perf_counter()
        aligned = self.resample(image, reg)
        warp_ms = (time.perf_counter() - t) * 1e3
        timings = {**reg.timings_ms, "warp": warp_ms, "total": reg.timings_ms["total"] + warp_ms}
        out_warp = reg.warp if self.config.motion is MotionModel.HOMOGRAPHY else reg.warp[:2].copy()
        return Aligned(out_warp, reg.dx, reg.dy, reg.angle_deg, reg.quality, reg.coarse, timings, reg.coarse_tries,
                       image=aligned)

    def _check_pose(self, warp: np.ndarray, stage: str) -> tuple[float, float, float]:
        dx, dy, angle = self.pose(warp)
        cfg = self.config
        if not (math.hypot(dx, dy) <= cfg.max_shift_px and abs(angle) <= cfg.max_rotation_deg + 0.5):
            raise AlignmentError(f"{stage} pose dx={dx:.1f}, dy={dy:.1f}, angle={angle:.2f} deg is outside "
                                 f"max_shift_px={cfg.max_shift_px}, max_rotation_deg={cfg.max_rotation_deg}",
                                 hint="the part is misplaced, or it is not the reference part")
        return dx, dy, angle
