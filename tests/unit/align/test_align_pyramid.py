"""The pyramid plan, large frames, ROI-only resampling and the coarse angle search."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.align import AlignConfig, Aligner, Coarse, MotionModel, Roi, check_rois, crop_rois
from edgead.align.aligner import plan_levels
from edgead.align.coarse import PhaseCoarse
from edgead.errors import AlignmentError


@pytest.mark.parametrize("hw, expected", [((256, 320), (3, 1, 2)), ((2048, 2448), (6, 3, 5)),
                                          ((128, 160), (2, 0, 1)), ((1024, 1280), (5, 3, 4))])
def test_default_plan_scales_with_the_frame(hw, expected):
    assert plan_levels(hw, AlignConfig()) == expected


def test_explicit_plan_and_downscale():
    assert plan_levels((256, 320), AlignConfig(pyramid_levels=2, finest_level=0)) == (2, 0, 1)
    assert plan_levels((256, 320), AlignConfig(downscale=0.5))[2] == -1  # the coarse stage resizes
    with pytest.raises(AlignmentError, match="too small for 6 pyramid levels"):
        plan_levels((256, 320), AlignConfig(pyramid_levels=6))


@pytest.mark.parametrize("pose", [(0.0, 0.0, 0.0), (0.37, -0.62, 0.3), (41.5, -23.25, 2.5), (-90.0, 60.0, -5.0)])
def test_large_frame_recovered_under_one_pixel(large_scene, pose):
    large = large_scene
    aligner = Aligner(large.reference)
    assert aligner.finest == 3  # refined at 160x128 only
    true = large.pose(*pose)
    result = aligner.align(large.frame(true))
    assert large.corner_error(true, result.warp) < 1.0, pose
    assert result.quality > 0.9


@pytest.mark.parametrize("motion", [MotionModel.EUCLIDEAN, MotionModel.HOMOGRAPHY])
def test_roi_resampling_matches_the_full_warp(scene, motion):
    rgb_ref = np.repeat(scene.reference[:, :, None], 3, axis=2)
    frame = np.repeat(scene.frame(scene.pose(6.5, -4.25, 1.5))[:, :, None], 3, axis=2)
    aligner = Aligner(rgb_ref, AlignConfig(motion=motion))
    reg = aligner.register(frame)
    rois = check_rois([Roi("pin", 10, 20, 48, 32), Roi("edge", 200, 100, 120, 156), Roi("all", 0, 0, 320, 256)],
                      rgb_ref.shape)
    crops = aligner.resample(frame, reg, rois)
    full = aligner.resample(frame, reg)
    assert full.shape == rgb_ref.shape
    for crop, expected in zip(crops, crop_rois(full, rois)):
        assert crop.shape == expected.shape
        assert np.abs(crop.astype(int) - expected.astype(int)).max() <= 1


def test_register_does_not_resample_and_gray_rois_keep_a_channel_axis(scene):
    ref = scene.reference[:, :, None]
    aligner = Aligner(ref)
    frame = scene.frame(scene.pose(3.0, 2.0, -1.0))[:, :, None]
    reg = aligner.register(frame)
    assert set(reg.timings_ms) == {"coarse", "refine", "total"}
    assert reg.quality > 0.9 and reg.coarse is Coarse.PHASE
    (crop,) = aligner.resample(frame, reg, [Roi("a", 0, 0, 40, 30)])
    assert crop.shape == (30, 40, 1)


def test_angle_search_climbs_instead_of_trying_every_angle(scene):
    ref = scene.reference.astype(np.float32)
    search = PhaseCoarse(ref, 1.0, max_rotation_deg=6.0, step_deg=1.0, min_response=0.08)
    turned = scene.frame(scene.pose(4.0, -3.0, 2.0)).astype(np.float32)
    got = search.estimate(turned)
    angle = np.degrees(np.arctan2(got.warp[1, 0], got.warp[0, 0]))
    assert abs(angle - 2.0) < 0.51
    assert got.tries < 13  # 0, +-1, +2, +3: climbs to 2 and stops
    flat = np.full_like(ref, 128.0)
    assert search.estimate(flat).tries == 13  # a weak peak everywhere: every angle is tried


def test_closed_form_inverse_and_rescale_match_numpy():
    from edgead.align.coarse import rescale_warp, scale_matrix
    from edgead.align.refine import _inverse3

    def _inverse(warp):
        return np.array(_inverse3(tuple(warp.ravel()))).reshape(3, 3)

    rng = np.random.default_rng(3)
    for _ in range(50):
        affine = np.eye(3)
        affine[:2] = rng.normal(size=(2, 3))
        assert np.allclose(_inverse(affine) @ affine, np.eye(3))
        homography = rng.normal(size=(3, 3))
        assert np.allclose(_inverse(homography), np.linalg.inv(homography))
        expected = np.linalg.inv(scale_matrix(0.25)) @ homography @ scale_matrix(0.25)
        assert np.allclose(rescale_warp(homography, 0.25), expected)


@pytest.mark.parametrize("pose", [(6.0, -4.0, 2.0), (-12.0, 9.0, -5.5), (0.4, 0.25, 0.0)])
def test_a_pose_near_the_centre_of_the_search_is_refined_from_one_correlation(scene, pose):
    aligner = Aligner(scene.reference)  # the search spans +-6 degrees: 13 angles
    true = scene.pose(*pose)
    reg = aligner.register(scene.frame(true))
    assert reg.coarse_tries == 1 and reg.coarse is Coarse.PHASE
    assert scene.corner_error(true, reg.warp) < 1.0


@pytest.mark.parametrize("angle", [8.0, -8.0])
def test_the_rotation_search_runs_when_the_refinement_from_the_centre_does_not_converge(scene, angle, monkeypatch):
    from edgead.align import aligner as aligner_module

    monkeypatch.setattr(aligner_module, "CENTRE_ITERATIONS", 4)  # from 0 degrees this pose needs about 8 steps
    aligner = Aligner(scene.reference, AlignConfig(max_rotation_deg=10.0))
    true = scene.pose(6.0, -4.0, angle)
    reg = aligner.register(scene.frame(true))
    assert reg.coarse_tries > 1
    assert scene.corner_error(true, reg.warp) < 1.0
    assert reg.timings_ms["total"] >= reg.timings_ms["coarse"] + reg.timings_ms["refine"] - 1e-6


def test_the_search_runs_when_the_fit_from_the_centre_fails_the_gate(scene, monkeypatch):
    from edgead.align import aligner as aligner_module

    aligner = Aligner(scene.reference)
    true = scene.pose(6.0, -4.0, 2.0)
    centre_fit = aligner_module.Aligner._fit

    def gate_fails_from_the_centre(self, frame_pyramid, coarse_warp, method, tries, spent, iterations=None):
        if iterations is not None:
            raise AlignmentError("alignment quality 0.100 is below the gate min_quality=0.6")
        return centre_fit(self, frame_pyramid, coarse_warp, method, tries, spent, iterations)

    monkeypatch.setattr(aligner_module.Aligner, "_fit", gate_fails_from_the_centre)
    reg = aligner.register(scene.frame(true))
    assert reg.coarse_tries >= 3  # 0 and its two neighbours at least
    assert scene.corner_error(true, reg.warp) < 1.0


@pytest.mark.parametrize("config, tries", [(AlignConfig(coarse=Coarse.ORB), 0), (AlignConfig(coarse=Coarse.NONE), 0),
                                           (AlignConfig(max_rotation_deg=0.0), 1)])
def test_without_a_rotation_search_the_coarse_stage_runs_once(scene, config, tries):
    true = scene.pose(3.0, -2.0, 0.0)
    reg = Aligner(scene.reference, config).register(scene.frame(true))
    assert reg.coarse_tries == tries
    assert scene.corner_error(true, reg.warp) < 1.0


def test_the_refinement_reports_whether_it_converged_within_its_steps(scene):
    aligner = Aligner(scene.reference)
    frame_pyramid = aligner._frame_pyramid(scene.frame(scene.pose(2.0, 1.0, 4.0)))
    start = scene.pose(2.0, 1.0, 0.0)
    capped = aligner.refiner.refine(frame_pyramid, start, iterations=1)
    assert capped.iterations == (1, 1) and not capped.converged
    free = aligner.refiner.refine(frame_pyramid, start)
    assert free.converged and max(free.iterations) < aligner.config.refine_iterations
