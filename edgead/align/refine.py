"""Pyramid refinement of a warp, and the quality measure of the gate. Pure numpy/cv2.

The refinement is inverse compositional (Baker and Matthews, "Lucas-Kanade 20 years on", 2004) with a global gain
and offset fitted at every step, so a lighting change does not move the warp, as with ECC (Evangelidis and Psarakis,
2008), whose criterion, the zero-mean normalised correlation, it also reports. Written here rather than calling
``cv2.findTransformECC`` because ECC is forwards additive: each call differentiates the frame and warps its
gradients and the Jacobian at every iteration. The inverse compositional form differentiates the reference: its
pyramid, gradients and steepest-descent images are computed once, when the station loads the reference, and so are
their sums and products over the whole level (:class:`ReferenceLevel`). A step costs one warp of the frame's level,
one product of it with the reference's columns, and one small solve; on the finest level, where the warp is final
and the gate is measured, the pixels the frame does not cover are left out (their rows taken from the totals), while
the levels above, which only have to land the next level in its basin, repeat the frame's edge there. The step's
small algebra (the 3x3 warps, the solve) is done on Python floats: on a station, an align runs after an inference
has evicted the caches, where every numpy or OpenCV call costs far more than its arithmetic.

Levels: ``cv2.pyrDown`` halves the resolution, so ``x_level = x_full / 2**level`` exactly; warps are carried from
level to level in full-resolution pixels.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from edgead.align.config import MotionModel
from edgead.errors import AlignmentError

MIN_LEVEL_PX = 48
"""Pyramid levels whose shorter side is below this are not refined on (too few pixels for a stable solve)."""
COARSE_LEVEL_EPS_PX = 0.1
"""A level above ``finest`` is done at this corner motion (its pixels) or less: it only has to land the next level
in its basin (0.2 px there); ``refine_eps_px`` holds on the finest level, where the warp is final."""
MIN_VALID_PIXELS = 0.25
"""A step that sees less of the reference than this (a fraction of its pixels) is a failure to converge."""
PARAMS = {MotionModel.TRANSLATION: 2, MotionModel.EUCLIDEAN: 3, MotionModel.AFFINE: 6, MotionModel.HOMOGRAPHY: 8}


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
    px, py, t = centre_pose(warp, center)
    co, si = (1.0, 0.0) if motion is MotionModel.TRANSLATION else (math.cos(t), math.sin(t))
    return np.array([[co, -si, px - co * cx + si * cy], [si, co, py - si * cx - co * cy], [0.0, 0.0, 1.0]])


def centre_pose(warp: np.ndarray, center: tuple[float, float]) -> tuple[float, float, float]:
    """``(x, y, angle)`` of a 3x3 warp: where it sends the point ``center``, and its rotation in radians (of its
    linear part's nearest rotation)."""
    cx, cy = center
    (a, b, c), (d, e, f), (g, h, i) = warp.tolist()  # Python floats: numpy calls on 3x3 cost more than the math
    z = g * cx + h * cy + i
    return (a * cx + b * cy + c) / z, (d * cx + e * cy + f) / z, math.atan2(d - b, a + e)


def _jacobian(motion: MotionModel, xn: np.ndarray, yn: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """d(x', y')/dp at the identity, per parameter, in normalised coordinates (see :func:`_level_delta`)."""
    one, zero = np.ones_like(xn), np.zeros_like(xn)
    if motion is MotionModel.TRANSLATION:
        return [(one, zero), (zero, one)]
    if motion is MotionModel.EUCLIDEAN:
        return [(-yn, xn), (one, zero), (zero, one)]
    affine = [(xn, zero), (zero, xn), (yn, zero), (zero, yn), (one, zero), (zero, one)]
    if motion is MotionModel.AFFINE:
        return affine
    return affine + [(-xn * xn, -xn * yn), (-xn * yn, -yn * yn)]


@dataclass
class ReferenceLevel:
    """One level of the reference, prepared once: the image, its steepest-descent images and their sums.

    Attributes:
        image: float32 gray reference at this level, ``[h, w]``.
        columns: float32 ``[h * w, 2 + n_params]``, per pixel: 1, the reference minus its mean, and the steepest-
            descent images (the reference gradient times the warp Jacobian). A step's sums over the pixels the frame
            covers are one product with it, and what the frame does not cover is subtracted from ``totals``.
        totals: ``columns.T @ columns`` over all pixels, float64: the pixel count, the reference's sums, the
            steepest-descent images' sums, their products with the reference, and the Hessian.
        norm: 3x3 map from level pixels to normalised coordinates (centre 0, long half-side 1), 9 floats.
        scale: this level's scale, ``0.5 ** level``.
        corners: the level's corner pixels, ``(x, y)`` pairs (for the convergence test).
        mean: the reference's mean at this level, float32 (a step subtracts it from the warped frame).
    """

    image: np.ndarray
    columns: np.ndarray
    totals: np.ndarray
    norm: tuple
    scale: float
    corners: tuple[tuple[float, float], ...]
    mean: np.float32

    def step(self, warped: np.ndarray, level: int) -> tuple[float, np.ndarray, np.ndarray, float]:
        """The Gauss-Newton system of one inverse-compositional step, with the gain and offset fitted.

        Args:
            warped: the frame level warped onto this level's grid, flat float32, NaN where the frame does not fully
                cover a pixel (those pixels are left out; the array is overwritten: less :attr:`mean`, 0 there).
            level: this level's number, for the messages.

        Returns:
            ``(zncc, hessian, gradient, valid)``: the zero-mean normalised correlation of the reference and the warped
            frame over the covered pixels, the Hessian (rows) and ``steepest.T @ (gain * warped + offset - reference)``
            over them, as Python floats, and the covered fraction.

        Raises:
            AlignmentError: the frame covers less than :data:`MIN_VALID_PIXELS` of the level, or it (or the
                reference) is flat where they overlap.
        """
        outside = np.flatnonzero(np.isnan(warped))
        valid = 1.0 - outside.size / warped.size
        if valid < MIN_VALID_PIXELS:
            raise AlignmentError(f"only {valid:.0%} of the reference is in view at pyramid level {level} (the "
                                 f"refinement needs {MIN_VALID_PIXELS:.0%})",
                                 hint="the part is out of the field of view, or not the reference part")
        # the frame less the reference's mean, a constant: its float32 sums below are of small terms, as a centred
        # frame's would be, without a pass for the frame's own mean first (which needs the covered pixels' sum)
        warped -= self.mean
        totals = self.totals
        if outside.size:
            warped[outside] = 0.0
            left_out = self.columns.take(outside, axis=0)
            totals = totals - left_out.T @ left_out  # float32 products of the few rows left out, float64 totals
        return (*self._system(warped, totals), valid)

    def step_whole(self, warped: np.ndarray) -> tuple[float, list, list]:
        """:meth:`step` over every pixel of the level: for a frame level warped with its edge repeated
        (``cv2.BORDER_REPLICATE``) instead of marked, as on the levels above the finest, which only have to land the
        next one in its basin. Returns ``(zncc, hessian, gradient)``; overwrites ``warped`` (less :attr:`mean`).

        Raises:
            AlignmentError: the frame (or the reference) is flat.
        """
        warped -= self.mean
        return self._system(warped, self.totals)

    def _system(self, warped: np.ndarray, totals: np.ndarray) -> tuple[float, list, list]:
        """ZNCC, Hessian and gradient from the frame less :attr:`mean` (0 where left out) and the totals over the
        pixels kept."""
        # over the pixels kept (the others are 0): [sum, . reference, steepest.T @], and the sum of squares
        products = (warped @ self.columns).tolist()
        square = float(warped @ warped)
        (n, sum_t, *sum_g), (_, sum_tt, *sum_gt), *hessian = totals.tolist()
        mi, mt = products[0] / n, sum_t / n
        var_i = square - mi * products[0]
        var_t = sum_tt - n * mt * mt
        if var_i < 1e-6 * n or var_t < 1e-6 * n:
            raise AlignmentError("no alignment quality: the frame or the reference is flat where they overlap (a "
                                 "blank frame?)", hint="check the camera and the lighting")
        cov = products[1] - mi * sum_t  # the centred frame . the reference (itself less its mean over all pixels)
        gain = cov / var_i
        # steepest.T @ (gain * centred + mt - t) over the pixels kept, centred = frame - mi; t is the reference minus
        # its mean here, and mt the mean of that over the pixels kept: the reference's sums enter only as differences.
        gradient = [gain * (c - mi * g) + mt * g - gt for c, g, gt in zip(products[2:], sum_g, sum_gt)]
        return cov / math.sqrt(var_i * var_t), [row[2:] for row in hessian], gradient

    @classmethod
    def build(cls, image: np.ndarray, motion: MotionModel, scale: float) -> "ReferenceLevel":
        h, w = image.shape
        cx, cy, s = (w - 1) / 2.0, (h - 1) / 2.0, max(w, h) / 2.0
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        xn, yn = (xs - cx) / s, (ys - cy) / s
        flat = image.astype(np.float64).ravel()
        cols = [np.ones(h * w), flat - flat.mean()]
        cols += [(s * (gx * jx + gy * jy)).ravel() for jx, jy in _jacobian(motion, xn, yn)]
        columns = np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32)
        wide = columns.astype(np.float64)
        norm = (1 / s, 0.0, -cx / s, 0.0, 1 / s, -cy / s, 0.0, 0.0, 1.0)
        corners = ((0.0, 0.0), (w - 1.0, 0.0), (w - 1.0, h - 1.0), (0.0, h - 1.0))
        return cls(image, columns, wide.T @ wide, norm, scale, corners, np.float32(flat.mean()))


@dataclass(frozen=True)
class Refined:
    """The result of :meth:`PyramidRefiner.refine`.

    Attributes:
        warp: 3x3 reference -> frame warp, full-resolution pixels.
        quality: zero-mean normalised correlation of the reference and the warped frame at the finest refined level,
            over the pixels the frame covers.
        valid: the fraction of the reference's pixels the frame covers at that level.
        iterations: steps taken, per level, coarsest first.
        converged: every level ended on a step below its threshold, none on the most steps allowed.
    """

    warp: np.ndarray
    quality: float
    valid: float
    iterations: tuple[int, ...]
    converged: bool = True


class PyramidRefiner:
    """Coarse-to-fine inverse-compositional refinement from ``coarsest`` down to ``finest`` pyramid level.

    Args:
        ref_pyramid: the float32 gray reference's pyramid (:func:`pyramid`), at least down to ``coarsest``.
        motion: the motion model.
        coarsest, finest: the pyramid levels refined on (``coarsest >= finest``).
        iterations: most steps per level.
        eps_px: the finest level is done when a step moves no corner of the reference by more than this, in its
            pixels (a coarser level at :data:`COARSE_LEVEL_EPS_PX`, or ``eps_px`` if that is larger).
    """

    def __init__(self, ref_pyramid: list[np.ndarray], motion: MotionModel, coarsest: int, finest: int,
                 iterations: int, eps_px: float):
        self.motion, self.coarsest, self.finest = motion, coarsest, finest
        self.iterations, self.eps_px = iterations, eps_px
        self.levels = {lv: ReferenceLevel.build(ref_pyramid[lv], motion, 0.5 ** lv)
                       for lv in range(finest, coarsest + 1)}

    def refine(self, frame_pyramid: list[np.ndarray], warp: np.ndarray, iterations: int | None = None) -> Refined:
        """Refine a 3x3 full-resolution warp.

        Args:
            frame_pyramid: the frame's float32 gray pyramid, at least down to ``coarsest``.
            warp: initial 3x3 warp, reference -> frame, already of the motion model.
            iterations: most steps per level, if fewer than the refiner's.

        Returns:
            The :class:`Refined` warp with the quality at the finest level.

        Raises:
            AlignmentError: when a step sees too little of the reference, or the solve is singular (a blank frame).
        """
        steps = []
        quality = valid = 0.0
        converged = True
        most = self.iterations if iterations is None else min(iterations, self.iterations)
        m = tuple(warp.ravel().tolist())  # 9 floats: the steps' 3x3 algebra in Python, not numpy calls
        for level in range(self.coarsest, self.finest - 1, -1):
            ref = self.levels[level]
            s = ref.scale
            m = _rescale3(m, s)
            m, quality, valid, n, done = self._level(ref, frame_pyramid[level], m, level, most)
            m = _rescale3(m, 1.0 / s)
            steps.append(n)
            converged = converged and done
        return Refined(np.array(m).reshape(3, 3), quality, valid, tuple(steps), converged)

    def _level(self, ref: ReferenceLevel, frame: np.ndarray, m: tuple, level: int,
               most: int) -> tuple[tuple, float, float, int, bool]:
        h, w = ref.image.shape
        quality = valid = 0.0
        finest = level == self.finest
        eps = self.eps_px if finest else max(self.eps_px, COARSE_LEVEL_EPS_PX)
        norm = ref.norm
        for n in range(1, most + 1):
            warped = _warp_level(frame, m, (w, h), finest)
            if finest:
                quality, hess, gradient, valid = ref.step(warped, level)
            else:
                quality, hess, gradient = ref.step_whole(warped)
            dp = _solve(hess, gradient)
            if dp is None:
                raise AlignmentError(f"refinement is singular at pyramid level {level} (a flat frame?)",
                                     hint="check the frame shows the part")
            if not all(map(math.isfinite, dp)):
                raise AlignmentError(f"refinement diverged at pyramid level {level}", hint="check the frame")
            delta = _level_delta(self.motion, dp, norm)
            m = _mul3(m, _inverse3(delta))
            if _corner_motion3(delta, ref.corners) < eps:
                return m, quality, valid, n, True
        return m, quality, valid, most, False


def _solve(a: list[list[float]], b: list[float]) -> list[float] | None:
    """``x`` with ``a @ x = b`` for a small system given as Python floats (Gaussian elimination with partial
    pivoting), or None when a pivot is below ``cv2.solve``'s LU threshold (a singular system). In Python because
    at 2 to 8 unknowns the calls into numpy or OpenCV, and their conversions, cost more than the arithmetic."""
    n = len(b)
    rows = [row + [v] for row, v in zip(a, b)]
    for i in range(n):
        pivot, big = i, abs(rows[i][i])  # the first row with the largest pivot, plain loops: no key function calls
        for r in range(i + 1, n):
            v = abs(rows[r][i])
            if v > big:
                pivot, big = r, v
        if big < _SINGULAR:
            return None
        if pivot != i:
            rows[i], rows[pivot] = rows[pivot], rows[i]
        head = rows[i]
        lead = head[i]
        for r in range(i + 1, n):
            row = rows[r]
            f = row[i] / lead
            if f:
                rows[r] = [x - f * y for x, y in zip(row, head)]
    x = [0.0] * n
    for i in range(n - 1, -1, -1):
        row, known = rows[i], 0.0
        for j in range(i + 1, n):
            known += row[j] * x[j]
        x[i] = (row[n] - known) / row[i]
    return x


_SINGULAR = 100 * sys.float_info.epsilon
"""``cv2.solve``'s DECOMP_LU threshold on a pivot."""


def _mul3(a: tuple, b: tuple) -> tuple:
    """The product of two 3x3 matrices given as 9 floats, row-major."""
    return (a[0] * b[0] + a[1] * b[3] + a[2] * b[6], a[0] * b[1] + a[1] * b[4] + a[2] * b[7],
            a[0] * b[2] + a[1] * b[5] + a[2] * b[8],
            a[3] * b[0] + a[4] * b[3] + a[5] * b[6], a[3] * b[1] + a[4] * b[4] + a[5] * b[7],
            a[3] * b[2] + a[4] * b[5] + a[5] * b[8],
            a[6] * b[0] + a[7] * b[3] + a[8] * b[6], a[6] * b[1] + a[7] * b[4] + a[8] * b[7],
            a[6] * b[2] + a[7] * b[5] + a[8] * b[8])


def _inverse3(m: tuple) -> tuple:
    """The inverse of a 3x3 matrix given as 9 floats (the adjugate over the determinant).

    Raises:
        AlignmentError: the matrix is singular (a step that collapses the reference).
    """
    a, b, c, d, e, f, g, h, i = m
    co = (e * i - f * h, c * h - b * i, b * f - c * e, f * g - d * i, a * i - c * g, c * d - a * f,
          d * h - e * g, b * g - a * h, a * e - b * d)
    det = a * co[0] + b * co[3] + c * co[6]
    if det == 0.0 or not math.isfinite(det):
        raise AlignmentError("refinement produced a singular warp", hint="check the frame shows the part")
    return tuple(v / det for v in co)


def _level_delta(motion: MotionModel, p: list, norm: tuple) -> tuple:
    """The 3x3 warp of parameters ``p`` (identity at ``p = 0``; :func:`_jacobian` is its derivative there), which act in
    normalised coordinates, in level pixels: ``norm^-1 @ D(p) @ norm``."""
    s, cx, cy = 1.0 / norm[0], -norm[2] / norm[0], -norm[5] / norm[4]
    if motion is MotionModel.HOMOGRAPHY:
        inv = (s, 0.0, cx, 0.0, s, cy, 0.0, 0.0, 1.0)
        d = (1.0 + p[0], p[2], p[4], p[1], 1.0 + p[3], p[5], p[6], p[7], 1.0)
        return _mul3(_mul3(inv, d), norm)
    if motion is MotionModel.TRANSLATION:
        a, b, c, d, tx, ty = 1.0, 0.0, 0.0, 1.0, p[0], p[1]
    elif motion is MotionModel.EUCLIDEAN:
        a, b, c, d, tx, ty = math.cos(p[0]), -math.sin(p[0]), math.sin(p[0]), math.cos(p[0]), p[1], p[2]
    else:
        a, b, c, d, tx, ty = 1.0 + p[0], p[2], p[1], 1.0 + p[3], p[4], p[5]
    # x' = A (x - c) + s t + c: the linear part is the same in both coordinate systems
    return (a, b, cx - a * cx - b * cy + s * tx, c, d, cy - c * cx - d * cy + s * ty, 0.0, 0.0, 1.0)


def _corner_motion3(delta: tuple, corners: tuple) -> float:
    """Largest displacement (px) of the corners under a 3x3 warp given as 9 floats."""
    a, b, c, d, e, f, g, h, i = delta
    most = 0.0
    for x, y in corners:
        z = g * x + h * y + i
        most = max(most, abs((a * x + b * y + c) / z - x), abs((d * x + e * y + f) / z - y))
    return most


def _warp_level(frame: np.ndarray, m: tuple, size: tuple[int, int], marked: bool) -> np.ndarray:
    """``frame`` sampled along the warp ``m`` (9 floats) onto a ``size`` grid, flat float32: ``marked``, NaN where
    the frame does not fully cover a pixel; else its edge pixels repeated there."""
    warp = np.array(m).reshape(3, 3)
    if marked:
        return warp_image(frame, warp, size, border_value=np.nan).ravel()
    return warp_image(frame, warp, size, border_mode=cv2.BORDER_REPLICATE).ravel()


def _rescale3(m: tuple, scale: float) -> tuple:
    """A 3x3 warp (9 floats) in the pixels of an image ``scale`` times the size: ``S m S^-1``, ``S = diag(scale,
    scale, 1)``."""
    return (m[0], m[1], m[2] * scale, m[3], m[4], m[5] * scale, m[6] / scale, m[7] / scale, m[8])


def warp_image(image: np.ndarray, warp: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_LINEAR,
               border_value: float = 0, border_mode: int = cv2.BORDER_CONSTANT,
               out: np.ndarray | None = None) -> np.ndarray:
    """Sample ``image`` along a reference -> image warp onto a ``size`` = (width, height) canvas.

    ``border_mode=cv2.BORDER_REPLICATE`` extends the frame's edge instead of filling with ``border_value``
    (what the model should see: a black band would look like a defect). A NaN ``border_value`` on a float image
    marks every pixel that the frame does not fully cover.

    ``out``, given, receives the result (it must have the result's shape and dtype: ``[height, width]`` plus the
    image's channels, ``image.dtype``), and is returned.
    """
    flags = interpolation | cv2.WARP_INVERSE_MAP
    g, h, i = warp[2].tolist()  # Python floats: one call instead of three numpy scalars (the refinement's steps)
    if abs(g) > 1e-12 or abs(h) > 1e-12 or abs(i - 1.0) > 1e-12:
        return cv2.warpPerspective(image, warp, size, dst=out, flags=flags, borderMode=border_mode,
                                   borderValue=border_value)
    return cv2.warpAffine(image, warp[:2], size, dst=out, flags=flags, borderMode=border_mode,
                          borderValue=border_value)

