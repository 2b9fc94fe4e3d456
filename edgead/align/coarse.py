"""Coarse pose: phase correlation with a small rotation search, or ORB + RANSAC. Pure numpy/cv2.

Both estimators are built once from the reference (downscaled image, window, rotation candidates, ORB features)
and return a 3x3 warp in full-resolution pixels that maps reference coordinates to image coordinates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edgead.align.config import MotionModel


@dataclass(frozen=True)
class CoarseResult:
    """A coarse pose: ``warp`` (3x3, reference -> image, full resolution) and a confidence in [0, 1]."""

    warp: np.ndarray
    response: float


def scale_matrix(scale: float) -> np.ndarray:
    """The 3x3 matrix that maps full-resolution to scaled coordinates (``x_small = scale * x_full``)."""
    return np.diag([scale, scale, 1.0])


def rescale_warp(warp: np.ndarray, scale: float) -> np.ndarray:
    """Express a 3x3 warp given at resolution ``scale`` in full-resolution pixels."""
    return np.linalg.inv(scale_matrix(scale)) @ warp @ scale_matrix(scale)


def rotation_about(center: tuple[float, float], angle_deg: float) -> np.ndarray:
    """3x3 rotation by ``angle_deg`` about ``center`` (the angle convention of ``Aligned.angle_deg``)."""
    t = math.radians(angle_deg)
    c, s = math.cos(t), math.sin(t)
    cx, cy = center
    return np.array([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy], [0.0, 0.0, 1.0]])


def resize_to(image: np.ndarray, scale: float) -> np.ndarray:
    """Downscale by ``scale`` with area averaging (no-op at 1)."""
    if scale >= 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)


class PhaseCoarse:
    """Phase correlation on a downscaled, Hann-windowed image; rotations by trying angles in a small range.

    The peak response is a free confidence: it falls quickly when the pose is not a translation of the reference.
    """

    def __init__(self, reference: np.ndarray, scale: float, max_rotation_deg: float, step_deg: float):
        self.scale = scale
        self.ref = resize_to(reference, scale).astype(np.float32)
        h, w = self.ref.shape
        self.size = (w, h)
        self.window = cv2.createHanningWindow((w, h), cv2.CV_32F)
        self.center = ((w - 1) / 2.0, (h - 1) / 2.0)
        n = int(math.floor(max_rotation_deg / step_deg + 1e-9))
        self.angles = [0.0] + [sign * k * step_deg for k in range(1, n + 1) for sign in (1, -1)]
        self.rotations = [rotation_about(self.center, a) for a in self.angles]

    def estimate(self, image: np.ndarray) -> CoarseResult:
        """Coarse pose of a float32 gray ``image`` of the reference's full size."""
        small = resize_to(image, self.scale).astype(np.float32)
        best: tuple[float, np.ndarray] | None = None
        for rot in self.rotations:
            if rot is self.rotations[0]:
                derotated = small
            else:  # sample the image along the candidate rotation: a pure shift of the reference if it is right
                derotated = cv2.warpAffine(small, rot[:2], self.size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                           borderMode=cv2.BORDER_REFLECT)
            (sx, sy), response = cv2.phaseCorrelate(self.ref, derotated, self.window)
            if best is None or response > best[0]:
                shift = np.array([[1.0, 0.0, sx], [0.0, 1.0, sy], [0.0, 0.0, 1.0]])
                best = (float(response), rot @ shift)
        response, warp = best
        return CoarseResult(rescale_warp(warp, self.scale), response if np.isfinite(response) else 0.0)


class OrbCoarse:
    """ORB keypoints + ratio-test matching + RANSAC (similarity, affine or homography by motion model)."""

    MIN_INLIERS = 12

    def __init__(self, reference_u8: np.ndarray, scale: float, n_features: int, motion: MotionModel):
        self.scale, self.motion = scale, motion
        self.orb = cv2.ORB_create(nfeatures=n_features, fastThreshold=5)  # low contrast parts still give corners
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        kp, self.des = self.orb.detectAndCompute(resize_to(reference_u8, scale), None)
        self.pts = np.float32([k.pt for k in kp]).reshape(-1, 2)

    def estimate(self, image_u8: np.ndarray) -> CoarseResult | None:
        """Coarse pose of a uint8 gray ``image``, or None when too few features match."""
        if self.des is None or len(self.pts) < self.MIN_INLIERS:
            return None
        kp, des = self.orb.detectAndCompute(resize_to(image_u8, self.scale), None)
        if des is None or len(kp) < self.MIN_INLIERS:
            return None
        pairs = self.matcher.knnMatch(self.des, des, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if len(good) < self.MIN_INLIERS:
            return None
        src = self.pts[[m.queryIdx for m in good]]
        dst = np.float32([kp[m.trainIdx].pt for m in good])
        if self.motion is MotionModel.HOMOGRAPHY:
            warp, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
        elif self.motion is MotionModel.AFFINE:
            warp, inliers = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        else:
            warp, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        if warp is None or inliers is None or int(inliers.sum()) < self.MIN_INLIERS:
            return None
        full = warp if warp.shape == (3, 3) else np.vstack([warp, [0.0, 0.0, 1.0]])
        return CoarseResult(rescale_warp(full.astype(np.float64), self.scale), float(inliers.mean()))
