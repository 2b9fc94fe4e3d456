"""The synthetic station: determinism, exact masks on the part, visible defects, poses that round-trip."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from edgead.data.images import Color
from edgead.data.synthetic import (DefectType, Pose, StationSpec, affine_matrix, part_region, random_pose,
                                   reference_image, render_part)
from edgead.errors import ConfigError

SPEC = StationSpec(height=128, width=160)
STILL = dataclasses.replace(SPEC, lighting_drift=0.0, noise_sigma=0.0)


def _render(spec, pose, defect, seed):
    return render_part(spec, pose, defect, np.random.default_rng(seed))


@pytest.mark.parametrize("defect", [None, *DefectType])
def test_deterministic_by_seed(defect):
    pose = Pose(2.5, -1.0, 1.5)
    a, ma = _render(SPEC, pose, defect, 7)
    b, mb = _render(SPEC, pose, defect, 7)
    c, _ = _render(SPEC, pose, defect, 8)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("color", list(Color))
@pytest.mark.parametrize("defect", list(DefectType))
def test_masks_nonempty_inside_part_and_visible(color, defect):
    spec = dataclasses.replace(STILL, color=color)
    for seed in range(3):
        pose = random_pose(spec, np.random.default_rng(seed), aligned=False)
        img, mask = _render(spec, pose, defect, seed)
        good, none = _render(spec, pose, None, seed)
        assert img.shape == (128, 160, color.channels) and img.dtype == np.uint8
        assert mask.dtype == bool and mask.shape == (128, 160) and not none.any()
        assert 10 <= mask.sum() < 0.02 * mask.size, "small but not a speck"
        assert not (mask & ~part_region(spec, pose)).any(), "defect off the part"
        diff = np.abs(img.astype(int) - good.astype(int)).max(axis=2)
        assert diff[mask].mean() > 12, f"{defect.value} barely visible"
        assert diff[~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)].max() <= 1


def test_default_size_defects_scale_with_image():
    big = dataclasses.replace(STILL, height=256, width=320)
    small_area = _render(STILL, Pose(), DefectType.DENT, 3)[1].sum()
    big_area = _render(big, Pose(), DefectType.DENT, 3)[1].sum()
    assert 2.5 < big_area / small_area < 6


def test_reference_image_is_still_good_part_at_pose_zero():
    ref = reference_image(SPEC)
    img, mask = _render(STILL, Pose(), None, 123)
    assert np.array_equal(ref, img) and not mask.any()
    assert reference_image(dataclasses.replace(SPEC, color=Color.GRAY)).shape == (128, 160, 1)


def test_looks_like_a_part_not_noise():
    ref = reference_image(SPEC)[:, :, 0].astype(float)
    part = part_region(SPEC)
    assert ref[part].mean() - ref[~part].mean() > 60  # bright plate on a dark fixture
    assert 0.25 < part.mean() < 0.6


@pytest.mark.parametrize("dx, dy", [(3.0, -2.0), (-7.5, 4.25), (0.0, 9.0)])
def test_shift_round_trips_through_phase_correlation(dx, dy):
    ref = reference_image(SPEC)[:, :, 0].astype(np.float32)
    moved = _render(STILL, Pose(dx, dy, 0.0), None, 0)[0][:, :, 0].astype(np.float32)
    window = cv2.createHanningWindow((SPEC.width, SPEC.height), cv2.CV_32F)
    (sx, sy), response = cv2.phaseCorrelate(ref, moved, window)
    # phase correlation's sub-pixel peak is biased by up to ~0.35 px at exactly half a pixel
    assert abs(sx - dx) < 0.4 and abs(sy - dy) < 0.4 and response > 0.3


def test_rotation_round_trips_through_inverse_warp():
    pose = Pose(4.0, -3.0, 2.5)
    moved = _render(STILL, pose, None, 0)[0]
    back = cv2.warpAffine(moved, cv2.invertAffineTransform(affine_matrix(STILL, pose)), (160, 128))
    ref = reference_image(SPEC)
    inner = cv2.erode(part_region(SPEC).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.abs(back.astype(int) - ref.astype(int))[inner].mean() < 4


def test_affine_matrix_matches_opencv():
    pose = Pose(1.5, -2.0, 3.0)
    expected = cv2.getRotationMatrix2D(((160 - 1) / 2, (128 - 1) / 2), 3.0, 1.0)
    expected[:, 2] += (1.5, -2.0)
    assert np.allclose(affine_matrix(SPEC, pose), expected)


def test_random_pose_limits():
    rng = np.random.default_rng(0)
    raw = [random_pose(SPEC, rng, aligned=False) for _ in range(200)]
    fine = [random_pose(SPEC, rng, aligned=True) for _ in range(200)]
    assert max(abs(p.dx) for p in raw) > 6 and all(abs(p.dx) <= SPEC.max_shift_px for p in raw)
    assert all(abs(p.angle_deg) <= SPEC.max_rotation_deg for p in raw)
    assert all(abs(p.dx) <= 0.5 and abs(p.dy) <= 0.5 and abs(p.angle_deg) <= 0.05 for p in fine)


def test_lighting_and_noise_vary_captures():
    a = _render(SPEC, Pose(), None, 1)[0].astype(float)
    b = _render(SPEC, Pose(), None, 2)[0].astype(float)
    assert 1 < np.abs(a - b).mean() < 40


def test_spec_validation_and_coercion():
    spec = StationSpec(color="gray", defect_types=("dent", "scratch"))
    assert spec.color is Color.GRAY and spec.defect_types == (DefectType.DENT, DefectType.SCRATCH)
    with pytest.raises(ConfigError, match="max_shift_px"):
        StationSpec(max_shift_px=100)
    with pytest.raises(ConfigError, match="defect_types.*crack"):
        StationSpec(defect_types=("crack",))
    with pytest.raises(ConfigError, match="height"):
        StationSpec(height=32)
    with pytest.raises(ConfigError, match="defect_types"):
        StationSpec(defect_types=())
