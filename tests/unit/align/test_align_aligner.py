"""Aligner: known poses recovered to under one pixel at the part's corners; failures raise AlignmentError."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.align import AlignConfig, Aligner, Coarse, MotionModel
from edgead.errors import AlignmentError, ConfigError

POSES = [(0.0, 0.0, 0.0), (3.3, -2.7, 0.0), (0.4, 0.25, 0.0), (20.5, -15.25, 2.0), (-37.0, 12.0, -4.5),
         (8.0, 8.0, 5.0)]


@pytest.mark.parametrize("motion", list(MotionModel))
@pytest.mark.parametrize("coarse", [Coarse.PHASE, Coarse.ORB])
def test_recovers_known_poses_under_one_pixel(scene, motion, coarse):
    aligner = Aligner(scene.reference, AlignConfig(motion=motion, coarse=coarse))
    for dx, dy, angle in POSES:
        angle = 0.0 if motion is MotionModel.TRANSLATION else angle
        true = scene.pose(dx, dy, angle)
        result = aligner.align(scene.frame(true))
        assert scene.corner_error(true, result.warp) < 1.0, (motion, coarse, dx, dy, angle)
        assert result.warp.shape == ((3, 3) if motion is MotionModel.HOMOGRAPHY else (2, 3))
        assert result.image.shape == scene.reference.shape
        assert result.quality > 0.9
        assert abs(result.dx - dx) < 1.0 and abs(result.dy - dy) < 1.0
        assert abs(result.angle_deg - angle) < 0.2
        assert set(result.timings_ms) == {"coarse", "refine", "warp", "total"}


def test_full_resolution_refinement_and_subpixel_shift(scene):

    aligner = Aligner(scene.reference, AlignConfig(motion=MotionModel.EUCLIDEAN, finest_level=0))
    true = scene.pose(0.37, -0.62, 0.3)
    result = aligner.align(scene.frame(true))
    assert scene.corner_error(true, result.warp) < 0.1


def test_affine_scale_and_homography_tilt(scene):

    true = scene.pose(4.0, -3.0, 1.5, scale=1.03)
    result = Aligner(scene.reference, AlignConfig(motion=MotionModel.AFFINE)).align(scene.frame(true))
    assert scene.corner_error(true, result.warp) < 1.0
    tilt = true.copy()
    tilt[2, :2] = [2e-5, -1.5e-5]
    result = Aligner(scene.reference, AlignConfig(motion=MotionModel.HOMOGRAPHY)).align(scene.frame(tilt))
    assert scene.corner_error(tilt, result.warp) < 1.0


def test_aligned_image_matches_reference_rgb(scene):

    rgb_ref = np.repeat(scene.reference[:, :, None], 3, axis=2)
    true = scene.pose(6.0, -4.0, 1.0)
    frame = np.repeat(scene.frame(true)[:, :, None], 3, axis=2)
    result = Aligner(rgb_ref).align(frame)
    assert result.image.shape == rgb_ref.shape
    inner = (slice(30, -30), slice(30, -30))
    diff = np.abs(result.image[inner].astype(int) - rgb_ref[inner].astype(int))
    assert np.median(diff) < 3


def test_lighting_change_still_aligns(scene):

    true = scene.pose(-5.5, 7.25, -2.0)
    frame = scene.frame(true).astype(np.float32)
    h, w = frame.shape
    gradient = np.linspace(0.75, 1.15, w, dtype=np.float32)[None, :]  # uneven illumination
    darker = np.clip(frame * 0.6 * gradient + 25, 0, 255).astype(np.uint8)
    result = Aligner(scene.reference).align(darker)
    assert scene.corner_error(true, result.warp) < 1.0
    assert result.quality > 0.8


def test_large_offset_and_rotation_with_orb_coarse(scene):

    true = scene.pose(70.0, -45.0, 4.0)
    result = Aligner(scene.reference, AlignConfig(coarse=Coarse.ORB)).align(scene.frame(true))
    assert scene.corner_error(true, result.warp) < 1.0


@pytest.mark.parametrize("kind", ["blank", "other part", "noise"])
def test_failed_alignment_raises(scene, other_scene, kind):
    frames = {
        "blank": np.full(scene.hw, 128, np.uint8),
        "other part": other_scene.reference,
        "noise": np.random.default_rng(0).integers(0, 256, scene.hw, dtype=np.uint8),
    }
    aligner = Aligner(scene.reference)
    with pytest.raises(AlignmentError) as err:
        aligner.align(frames[kind])
    message = str(err.value)
    assert "quality" in message or "ECC" in message or "pose" in message or "coarse" in message


def test_quality_gate_message_names_quality_and_gate(scene, other_scene):
    aligner = Aligner(scene.reference, AlignConfig(coarse=Coarse.NONE, fallback=Coarse.NONE, max_shift_px=1e6,
                                                   max_rotation_deg=180))
    with pytest.raises(AlignmentError, match=r"quality -?\d\.\d+ is below the gate min_quality=0.6"):
        aligner.align(other_scene.reference)


def test_pose_outside_limits_raises(scene):

    aligner = Aligner(scene.reference, AlignConfig(max_shift_px=5.0))
    with pytest.raises(AlignmentError, match="max_shift_px=5.0"):
        aligner.align(scene.frame(scene.pose(15.0, 0.0, 0.0)))


def test_size_mismatch_and_bad_config(scene):
    aligner = Aligner(scene.reference)
    with pytest.raises(AlignmentError, match="reference 320x256"):
        aligner.align(scene.reference[:200])
    with pytest.raises(ConfigError, match="alignment.motion"):
        AlignConfig(motion="spline")
    with pytest.raises(ConfigError, match="finest_level"):
        AlignConfig(pyramid_levels=1, finest_level=1)
    assert AlignConfig(motion="affine", coarse="orb").motion is MotionModel.AFFINE
