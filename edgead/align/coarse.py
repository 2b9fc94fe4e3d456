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
    """A coarse pose: ``warp`` (3x3, reference -> image, full resolution), a confidence in [0, 1], and how many
    candidate poses were tried for it."""

    warp: np.ndarray
    response: float
    tries: int = 1


def scale_matrix(scale: float) -> np.ndarray:
    """The 3x3 matrix that maps full-resolution to scaled coordinates (``x_small = scale * x_full``)."""
    return np.diag([scale, scale, 1.0])


def rescale_warp(warp: np.ndarray, scale: float) -> np.ndarray:
    """Express a 3x3 warp given at resolution ``scale`` in full-resolution pixels."""
    out = warp.copy()  # S^-1 W S with S = diag(scale, scale, 1), written out
    out[:2, 2] /= scale
    out[2, :2] *= scale
    return out


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


def unit_spectrum(image: np.ndarray) -> np.ndarray:
    """The DFT of a float32 image with every coefficient scaled to magnitude 1 (0 where it is 0), ``[H, W, 2]``."""
    spectrum = cv2.dft(image, flags=cv2.DFT_COMPLEX_OUTPUT)
    magnitude = np.abs(spectrum.view(np.complex64))  # [H, W, 1]
    magnitude += np.float32(1e-30)
    spectrum /= magnitude  # real by real, both parts: a complex array divided by a real one would cast it to complex
    return spectrum


class PhaseCoarse:
    """Phase correlation of a small image against the reference turned by a few candidate angles.

    The turned references are made once, here, and so are their windowed, whitened spectra: a frame's spectrum is
    computed once and each angle tried costs one spectrum product, one inverse DFT and the peak (what
    ``cv2.phaseCorrelate`` computes, which transforms both images on every call). Per frame the search climbs from
    0 degrees towards the better neighbour and stops at the first angle whose neighbours answer less (the peak
    response falls off quickly and smoothly with a rotation error); only when that peak is weak does it try every
    angle. The response is a free confidence: it falls when the pose is not a turned and shifted reference.

    Args:
        reference: the float32 gray reference at the coarse scale.
        scale: that scale (coarse pixels per full-resolution pixel).
        max_rotation_deg: the search range, +-.
        step_deg: the angle step.
        min_response: below this peak response the search tries every angle.
    """

    def __init__(self, reference: np.ndarray, scale: float, max_rotation_deg: float, step_deg: float,
                 min_response: float = 0.0):
        self.scale, self.min_response = scale, min_response
        h, w = reference.shape
        self.size = (w, h)
        self.window = cv2.createHanningWindow((w, h), cv2.CV_32F)
        self.center = ((w - 1) / 2.0, (h - 1) / 2.0)
        n = int(math.floor(max_rotation_deg / step_deg + 1e-9))
        self.steps = range(-n, n + 1)
        self.step_deg = step_deg
        ref = reference.astype(np.float32)
        self.rotations = {k: rotation_about(self.center, k * step_deg) for k in self.steps}
        # the reference as the frame shows it when the part is turned by k steps: turned(R x) = ref(x)
        self.turned = {k: ref if k == 0 else cv2.warpAffine(ref, rot[:2], self.size, flags=cv2.INTER_LINEAR,
                                                             borderMode=cv2.BORDER_REFLECT)
                       for k, rot in self.rotations.items()}
        self.spectra = {k: unit_spectrum(turned * self.window) for k, turned in self.turned.items()}

    def correlate(self, spectrum: np.ndarray, k: int) -> tuple[float, float, float]:
        """``(response, sx, sy)`` of a frame's :func:`unit_spectrum` (windowed) against the reference turned by
        ``k`` steps: ``cv2.phaseCorrelate(turned[k], frame, window)``'s answer (the peak's 5x5 weighted centroid,
        and the sum there over the pixel count), from the precomputed spectrum. Unlike OpenCV, whose box stops at
        the edges of its shifted surface, the box wraps around: the two differ only for shifts within 2 px of half
        the image."""
        h, w = spectrum.shape[:2]
        surface = cv2.idft(cv2.mulSpectrums(spectrum, self.spectra[k], 0, conjB=True), flags=cv2.DFT_REAL_OUTPUT)
        _, _, _, (px, py) = cv2.minMaxLoc(surface)
        if 2 <= px < w - 2 and 2 <= py < h - 2:
            box = surface[py - 2:py + 3, px - 2:px + 3].tolist()
        else:  # the box crosses the surface's edge (a shift near 0): it wraps around, as the correlation does
            box = surface.take(range(py - 2, py + 3), axis=0, mode="wrap").take(range(px - 2, px + 3), axis=1,
                                                                                mode="wrap").tolist()
        total = cx = cy = 0.0
        for d, row in zip(_BOX, box):
            r = row[0] + row[1] + row[2] + row[3] + row[4]
            total, cy, cx = total + r, cy + d * r, cx + 2.0 * (row[4] - row[0]) + row[3] - row[1]
        response = total / (w * h)
        if not (math.isfinite(response) and total > 0.0):
            return 0.0, 0.0, 0.0
        sx, sy = px + cx / total, py + cy / total
        return response, sx - w if sx > w / 2 else sx, sy - h if sy > h / 2 else sy

    def centre(self, small: np.ndarray) -> CoarseResult:
        """The pose at the centre of the rotation search, 0 degrees, of a float32 gray image at the coarse scale:
        the shift of one phase correlation. ``cv2.phaseCorrelate`` itself: for one angle, its one call (both
        transforms inside) costs less than the stored spectrum's several."""
        (sx, sy), response = cv2.phaseCorrelate(self.turned[0], small, self.window)
        return CoarseResult(self._pose(0, sx, sy), response, 1)

    def estimate(self, small: np.ndarray) -> CoarseResult:
        """Coarse pose of a float32 gray image at the coarse scale (the reference's coarse size)."""
        spectrum = unit_spectrum(small * self.window)
        tried: dict[int, tuple[float, float, float]] = {}

        def answer(j: int) -> float:
            if j not in tried:
                tried[j] = self.correlate(spectrum, j)
            return tried[j][0]

        k = 0
        best = answer(0)
        while True:
            moves = [j for j in (k - 1, k + 1) if j in self.rotations]
            answers = {j: answer(j) for j in moves}
            j = max(answers, key=answers.get, default=k)
            if not answers or answers[j] <= best:
                break
            k, best = j, answers[j]
        if best < self.min_response:
            for j in self.steps:
                answer(j)
            k = max(tried, key=lambda j: tried[j][0])
        response, sx, sy = tried[k]
        return CoarseResult(self._pose(k, sx, sy), response, len(tried))

    def _pose(self, k: int, sx: float, sy: float) -> np.ndarray:
        """The full-resolution warp of the reference turned by ``k`` steps, then shifted by ``(sx, sy)`` coarse
        pixels."""
        (a, b, c), (d, e, f), _ = self.rotations[k].tolist()
        return rescale_warp(np.array([[a, b, c + sx], [d, e, f + sy], [0.0, 0.0, 1.0]]), self.scale)


_BOX = (-2, -1, 0, 1, 2)


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
