"""What the aligner precomputes from the reference, and its Python-float algebra, equal the per-call computations."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edgead.align import MotionModel
from edgead.align.coarse import PhaseCoarse, unit_spectrum
from edgead.align.refine import (ReferenceLevel, _corner_motion3, _inverse3, _jacobian, _level_delta, _mul3,
                                 _rescale3, _solve, pyramid)
from edgead.errors import AlignmentError

POSES = [(0.0, 0.0, 0.0), (0.4, 0.25, 0.0), (3.3, -2.7, 1.0), (-9.0, 6.5, -2.5), (20.5, -15.25, 2.0)]


def test_phase_correlation_from_precomputed_spectra_equals_opencv(scene):
    ref2 = pyramid(scene.reference.astype(np.float32), 3)[2]
    search = PhaseCoarse(ref2, 0.25, max_rotation_deg=3.0, step_deg=1.0)
    for dx, dy, angle in POSES:
        small = pyramid(scene.frame(scene.pose(dx, dy, angle)).astype(np.float32), 3)[2]
        spectrum = unit_spectrum(small * search.window)
        for k in search.steps:
            (sx, sy), response = cv2.phaseCorrelate(search.turned[k], small, search.window)
            got = search.correlate(spectrum, k)
            assert abs(got[0] - response) < 1e-4, (dx, dy, angle, k)
            assert abs(got[1] - sx) < 1e-3 and abs(got[2] - sy) < 1e-3, (dx, dy, angle, k, got, (sx, sy))


def _per_pixel_step(ref: ReferenceLevel, motion: MotionModel, warped: np.ndarray):
    """The step computed pixel by pixel over the covered pixels, in float64: ZNCC, Hessian and gradient."""
    h, w = ref.image.shape
    cx, cy, s = (w - 1) / 2.0, (h - 1) / 2.0, max(w, h) / 2.0
    gx = cv2.Sobel(ref.image, cv2.CV_64F, 1, 0, ksize=3, scale=1 / 8).ravel()
    gy = cv2.Sobel(ref.image, cv2.CV_64F, 0, 1, ksize=3, scale=1 / 8).ravel()
    ys, xs = np.mgrid[0:h, 0:w]
    xn, yn = ((xs - cx) / s).ravel(), ((ys - cy) / s).ravel()
    steepest = np.stack([s * (gx * jx + gy * jy) for jx, jy in _jacobian(motion, xn, yn)], axis=1)
    valid = ~np.isnan(warped)
    i, t, g = warped[valid].astype(np.float64), ref.image.ravel()[valid].astype(np.float64), steepest[valid]
    ic, tc = i - i.mean(), t - t.mean()
    zncc = (ic @ tc) / math.sqrt((ic @ ic) * (tc @ tc))
    error = (ic @ tc) / (ic @ ic) * ic + t.mean() - t
    return zncc, g.T @ g, g.T @ error, valid.mean()


@pytest.mark.parametrize("motion", list(MotionModel))
@pytest.mark.parametrize("border", ["marked", "repeated"])
def test_step_from_precomputed_sums_equals_the_per_pixel_step(scene, motion, border):
    level = 1 if border == "marked" else 2  # the finest level marks the pixels the frame misses, those above repeat
    ref_img = pyramid(scene.reference.astype(np.float32), level + 1)[level]
    ref = ReferenceLevel.build(ref_img, motion, 0.5 ** level)
    h, w = ref_img.shape
    edge = {"borderValue": np.nan} if border == "marked" else {"borderMode": cv2.BORDER_REPLICATE}
    for dx, dy, angle in POSES[1:]:
        frame = pyramid(scene.frame(scene.pose(dx, dy, angle)).astype(np.float32), level + 1)[level]
        warp = scene.pose(-0.5 ** level * dx, -0.5 ** level * dy, angle)[:2]  # leaves part of the grid uncovered
        warped = cv2.warpAffine(frame, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, **edge).ravel()
        expected = _per_pixel_step(ref, motion, warped.copy())
        if border == "marked":
            assert expected[3] < 1.0 or dx == 0
            zncc, hessian, gradient, valid = ref.step(warped.copy(), level)
            assert abs(valid - expected[3]) < 1e-9
        else:
            assert expected[3] == 1.0  # every pixel kept
            zncc, hessian, gradient = ref.step_whole(warped.copy())
        assert abs(zncc - expected[0]) < 1e-5
        np.testing.assert_allclose(np.array(hessian), expected[1], rtol=1e-4, atol=1e-6 * np.abs(expected[1]).max())
        # the gradient is a small difference of large sums: compare it at the scale of its terms
        scale = np.abs(expected[1]).max() ** 0.5 * math.sqrt(h * w)
        np.testing.assert_allclose(np.array(gradient), expected[2], rtol=0, atol=1e-4 * scale)


def test_a_step_on_a_flat_frame_or_one_out_of_view_raises(scene):
    ref = ReferenceLevel.build(scene.reference.astype(np.float32), MotionModel.EUCLIDEAN, 1.0)
    with pytest.raises(AlignmentError, match="flat"):
        ref.step(np.full(scene.reference.size, 127.0, np.float32), 0)
    with pytest.raises(AlignmentError, match="flat"):
        ref.step_whole(np.full(scene.reference.size, 127.0, np.float32))
    mostly_out = np.full(scene.reference.size, np.nan, np.float32)
    mostly_out[:100] = 5.0
    with pytest.raises(AlignmentError, match="in view at pyramid level 0"):
        ref.step(mostly_out, 0)


def test_small_solve_equals_numpy_and_reports_a_singular_system():
    rng = np.random.default_rng(5)
    for n in (2, 3, 6, 8):
        a = rng.normal(size=(n, n))
        a = a @ a.T + n * np.eye(n)
        b = rng.normal(size=n)
        np.testing.assert_allclose(_solve(a.tolist(), b.tolist()), np.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    swapped = [[0.0, 2.0], [3.0, 1.0]]  # needs the row swap
    np.testing.assert_allclose(_solve(swapped, [4.0, 5.0]), np.linalg.solve(swapped, [4.0, 5.0]))
    assert _solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 1.0]) is None
    assert _solve([[0.0, 0.0, 0.0]] * 3, [0.0, 0.0, 0.0]) is None


@pytest.mark.parametrize("motion", list(MotionModel))
def test_float_algebra_equals_numpy(motion):
    rng = np.random.default_rng(9)
    w, h = 160, 128
    cx, cy, s = (w - 1) / 2.0, (h - 1) / 2.0, max(w, h) / 2.0
    norm = np.array([[1 / s, 0.0, -cx / s], [0.0, 1 / s, -cy / s], [0.0, 0.0, 1.0]])
    n_params = {MotionModel.TRANSLATION: 2, MotionModel.EUCLIDEAN: 3, MotionModel.AFFINE: 6,
                MotionModel.HOMOGRAPHY: 8}[motion]
    for _ in range(20):
        p = rng.normal(scale=0.02, size=n_params)
        if motion is MotionModel.EUCLIDEAN:
            d = np.array([[math.cos(p[0]), -math.sin(p[0]), p[1]], [math.sin(p[0]), math.cos(p[0]), p[2]], [0, 0, 1]])
        elif motion is MotionModel.TRANSLATION:
            d = np.array([[1.0, 0.0, p[0]], [0.0, 1.0, p[1]], [0, 0, 1]])
        else:
            d = np.array([[1 + p[0], p[2], p[4]], [p[1], 1 + p[3], p[5]], [0, 0, 1.0]])
            if motion is MotionModel.HOMOGRAPHY:
                d[2, :2] = p[6:8]
        expected = np.linalg.inv(norm) @ d @ norm
        delta = _level_delta(motion, p.tolist(), tuple(norm.ravel()))
        np.testing.assert_allclose(np.array(delta).reshape(3, 3), expected, rtol=1e-9, atol=1e-9)
        warp = rng.normal(size=(3, 3))
        np.testing.assert_allclose(np.array(_inverse3(tuple(warp.ravel()))).reshape(3, 3), np.linalg.inv(warp),
                                   rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(np.array(_mul3(tuple(warp.ravel()), delta)).reshape(3, 3), warp @ expected,
                                   rtol=1e-10, atol=1e-10)
        scale = np.diag([0.25, 0.25, 1.0])
        np.testing.assert_allclose(np.array(_rescale3(tuple(warp.ravel()), 0.25)).reshape(3, 3),
                                   scale @ warp @ np.linalg.inv(scale), rtol=1e-12)
        corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], np.float64)
        moved = corners @ expected.T
        most = np.abs(moved[:, :2] / moved[:, 2:] - corners[:, :2]).max()
        assert abs(_corner_motion3(delta, tuple(map(tuple, corners[:, :2]))) - most) < 1e-9
    with pytest.raises(AlignmentError, match="singular"):
        _inverse3((1.0, 2.0, 0.0, 2.0, 4.0, 0.0, 0.0, 0.0, 1.0))
