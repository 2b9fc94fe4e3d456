"""ECC refinement on a Gaussian pyramid, and the quality measure of the gate. Pure numpy/cv2.

The reference pyramid is built once; each level halves the resolution (``cv2.pyrDown``, so ``x_level =
x_full / 2**level`` exactly), and the warp is carried from level to level in full-resolution pixels.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from edgead.align.coarse import rescale_warp, scale_matrix
from edgead.align.config import AlignConfig, MotionModel
from edgead.errors import AlignmentError

ECC_MOTION: dict[MotionModel, int] = {
    MotionModel.TRANSLATION: cv2.MOTION_TRANSLATION,
    MotionModel.EUCLIDEAN: cv2.MOTION_EUCLIDEAN,
    MotionModel.AFFINE: cv2.MOTION_AFFINE,
    MotionModel.HOMOGRAPHY: cv2.MOTION_HOMOGRAPHY,
}


def pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` images, full resolution first, each the ``pyrDown`` of the one before."""
    out = [image]
    for _ in range(levels - 1):
        out.append(cv2.pyrDown(out[-1]))
    return out


def project_warp(warp: np.ndarray, motion: MotionModel, center: tuple[float, float]) -> np.ndarray:
    """Project a 3x3 warp onto a motion model, keeping where the reference ``center`` lands.

    Args:
        warp: 3x3 reference -> image warp.
        motion: the model to project onto.
        center: the reference point whose image position is kept.

    Returns:
        A 3x3 warp of that model (translation: identity linear part; euclidean: the nearest rotation).
    """
    if motion in (MotionModel.AFFINE, MotionModel.HOMOGRAPHY):
        return warp.copy()
    cx, cy = center
    p = warp @ np.array([cx, cy, 1.0])
    px, py = p[0] / p[2], p[1] / p[2]
    if motion is MotionModel.TRANSLATION:
        lin = np.eye(2)
    else:
        t = math.atan2(warp[1, 0] - warp[0, 1], warp[0, 0] + warp[1, 1])
        lin = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    out = np.eye(3)
    out[:2, :2] = lin
    out[:2, 2] = np.array([px, py]) - lin @ np.array([cx, cy])
    return out


MIN_LEVEL_PX = 48
"""Pyramid levels whose shorter side is below this are skipped (ECC is unstable on so few pixels)."""


class EccRefiner:
    """Coarse-to-fine ECC from ``pyramid_levels - 1`` down to ``finest_level``."""

    def __init__(self, reference: np.ndarray, config: AlignConfig):
        self.config = config
        self.motion = config.motion
        self.ref_pyramid = pyramid(reference.astype(np.float32), config.pyramid_levels)
        self.criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, config.ecc_iterations, config.ecc_eps)

    def refine(self, image_pyramid: list[np.ndarray], warp: np.ndarray) -> tuple[np.ndarray, float]:
        """Refine a 3x3 full-resolution warp.

        Args:
            image_pyramid: the frame's float32 gray pyramid (same levels as the reference's).
            warp: initial 3x3 warp, reference -> image, already of the motion model.

        Returns:
            ``(warp, ecc)``: the refined 3x3 warp and ECC's correlation at the finest level.

        Raises:
            AlignmentError: when ECC does not converge at the finest level (its Hessian is singular, e.g. on a
                blank frame). A coarser level that does not converge (too few pixels on a small image) is skipped:
                the finer levels start from the warp as it stood, and the quality gate judges the result.
        """
        ecc = float("nan")
        for level in range(self.config.pyramid_levels - 1, self.config.finest_level - 1, -1):
            if min(self.ref_pyramid[level].shape) < MIN_LEVEL_PX and level > self.config.finest_level:
                continue
            scale = 0.5 ** level
            w_level = scale_matrix(scale) @ warp @ np.linalg.inv(scale_matrix(scale))
            mat = (w_level if self.motion is MotionModel.HOMOGRAPHY else w_level[:2]).astype(np.float32)
            try:
                ecc, mat = cv2.findTransformECC(self.ref_pyramid[level], image_pyramid[level], mat,
                                                ECC_MOTION[self.motion], self.criteria, None, 5)
            except cv2.error as exc:
                if level > self.config.finest_level:
                    continue
                reason = str(exc).strip().splitlines()[-1]
                msg = f"ECC did not converge at pyramid level {level} ({reason})"
                raise AlignmentError(msg, hint="check the frame shows the part, or use coarse=orb") from exc
            full = mat.astype(np.float64) if mat.shape == (3, 3) else np.vstack([mat, [0.0, 0.0, 1.0]])
            warp = rescale_warp(full, scale)
        return warp, float(ecc)


def warp_image(image: np.ndarray, warp: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_LINEAR,
               border_value: float = 0, border_mode: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """Sample ``image`` along a reference -> image warp onto a ``size`` = (width, height) canvas.

    ``border_mode=cv2.BORDER_REPLICATE`` extends the frame's edge instead of filling with ``border_value``
    (what the model should see: a black band would look like a defect).
    """
    flags = interpolation | cv2.WARP_INVERSE_MAP
    if abs(warp[2, 0]) > 1e-12 or abs(warp[2, 1]) > 1e-12 or abs(warp[2, 2] - 1.0) > 1e-12:
        return cv2.warpPerspective(image, warp, size, flags=flags, borderMode=border_mode, borderValue=border_value)
    return cv2.warpAffine(image, warp[:2], size, flags=flags, borderMode=border_mode, borderValue=border_value)


def zncc(reference: np.ndarray, aligned: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """Zero-mean normalised cross-correlation over the valid pixels.

    Args:
        reference: float32 gray reference.
        aligned: float32 gray aligned frame, same size.
        valid: bool mask of pixels the warp maps inside the frame.

    Returns:
        ``(zncc, valid_fraction)``; zncc is 0 for a flat image (blank frame) or an empty mask.
    """
    mask = valid.astype(np.uint8)
    n = int(cv2.countNonZero(mask))
    if n == 0:
        return 0.0, 0.0
    mr, sr = (float(v[0][0]) for v in cv2.meanStdDev(reference, mask=mask))
    ma, sa = (float(v[0][0]) for v in cv2.meanStdDev(aligned, mask=mask))
    if sr * sa < 1e-6:
        return 0.0, n / mask.size
    cross = float(cv2.mean(cv2.multiply(reference, aligned), mask=mask)[0])
    return (cross - mr * ma) / (sr * sa), n / mask.size
