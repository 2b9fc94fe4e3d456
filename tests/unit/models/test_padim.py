"""PaDiM on synthetic parts: separation, localisation, the running-sum Gaussians, serialisation."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import DataError  # noqa: E402
from edgead.models.padim import Padim, fit  # noqa: E402
from separation import assert_separates  # noqa: E402

INPUT_HW = (96, 128)  # as the synthetic set of conftest.py


@pytest.fixture(scope="module")
def fitted(synthetic_set):
    model = Padim(INPUT_HW, n_features=64)
    fit(model, synthetic_set["train"], progress=False)
    return model


def test_defects_score_higher_and_maps_peak_on_them(fitted, synthetic_set):
    with torch.no_grad():
        good_scores, _ = fitted(synthetic_set["goods"])
        bad_scores, bad_maps = fitted(synthetic_set["defects"])
    assert_separates(good_scores, bad_scores, min_auroc=0.95)
    for score, amap, mask in zip(bad_scores, bad_maps.numpy(), synthetic_set["masks"]):
        assert float(score) == pytest.approx(float(amap.max()))
        y, x = np.unravel_index(amap.argmax(), amap.shape)
        ys, xs = np.nonzero(mask)
        assert ys.min() - 12 <= y <= ys.max() + 12 and xs.min() - 12 <= x <= xs.max() + 12


def test_running_sums_match_numpy_covariance(fitted, synthetic_set):
    with torch.no_grad():
        emb = torch.cat([fitted.embed(b) for b in synthetic_set["train"]]).double().numpy()  # [N, P, d]
    pos = 5
    cov = np.cov(emb[:, pos, :], rowvar=False) + fitted.eps * np.eye(emb.shape[2])
    np.testing.assert_allclose(fitted.mean[0, pos].numpy(), emb[:, pos].mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        fitted.inv_covariance[0, pos].double().numpy() @ cov, np.eye(emb.shape[2]), atol=1e-3
    )


def test_channel_subset_is_seeded_and_round_trips(fitted, synthetic_set):
    again = Padim(INPUT_HW, n_features=64, pretrained=False)
    assert torch.equal(again.channel_index, fitted.channel_index)
    clone = Padim.from_state(fitted.export_params(), fitted.export_state())
    with torch.no_grad():
        torch.testing.assert_close(clone(synthetic_set["goods"][:2]), fitted(synthetic_set["goods"][:2]))


def test_fit_needs_two_images():
    model = Padim(INPUT_HW, n_features=8, pretrained=False)
    with pytest.raises(DataError, match="at least 2"):
        fit(model, [torch.zeros(1, 3, *INPUT_HW)], progress=False)


# -- continual: per-task Gaussian stacks and running statistics (edgead.continual) ----------------------------


def _reference_forward(model, x):
    """The single-task forward as written before the task axis (the reference for T = 1)."""
    from torch.nn import functional as F

    delta = (model.embed(x) - model.mean[0]).transpose(0, 1)
    dist2 = (torch.matmul(delta, model.inv_covariance[0]) * delta).sum(-1).clamp_min(0.0)
    amap = dist2.sqrt().transpose(0, 1).reshape(-1, 1, model.grid_hw[0], model.grid_hw[1])
    amap = model.smoothing(F.interpolate(amap, size=model.input_hw, mode="bilinear", align_corners=False)).squeeze(1)
    return amap.flatten(1).amax(dim=1), amap


def _inverted(batch):
    return -batch  # normalised with mean 0.5 / std 0.5: the image 1 - x


@pytest.fixture(scope="module")
def two_tasks(fitted, synthetic_set, one_thread):
    """Gaussians of task A (the synthetic part) and task B (its inverted images), stacked as one model."""
    from edgead.continual.banks import _padim_with_tasks

    task_b = Padim(INPUT_HW, n_features=64)
    fit(task_b, [_inverted(b) for b in synthetic_set["train"]], progress=False)
    stacked = _padim_with_tasks(fitted, torch.cat([fitted.mean, task_b.mean]),
                                torch.cat([fitted.inv_covariance, task_b.inv_covariance]))
    return task_b, stacked


def test_one_task_output_is_the_plain_model(fitted, synthetic_set, one_thread):
    x = torch.cat([synthetic_set["goods"][:1], synthetic_set["defects"][:1]])
    with torch.no_grad():
        got, want = fitted(x), _reference_forward(fitted, x)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_two_tasks_select_the_right_task_per_image(fitted, two_tasks, synthetic_set):
    task_b, stacked = two_tasks
    a, b = synthetic_set["defects"][:2], _inverted(synthetic_set["defects"][2:4])
    with torch.no_grad():
        mixed = stacked(torch.cat([a, b]))
        want_a, want_b = fitted(a), task_b(b)
    torch.testing.assert_close(mixed[0], torch.cat([want_a[0], want_b[0]]))
    torch.testing.assert_close(mixed[1], torch.cat([want_a[1], want_b[1]]))


def test_two_tasks_export_to_onnx(two_tasks, synthetic_set, onnx_parity):
    _, stacked = two_tasks
    x = torch.cat([synthetic_set["goods"][:2], _inverted(synthetic_set["goods"][2:4])])
    onnx_parity(stacked, x[:1], x)


def test_stacked_model_round_trips_and_old_state_loads(fitted, two_tasks, synthetic_set):
    _, stacked = two_tasks
    clone = Padim.from_state(stacked.export_params(), stacked.export_state())
    assert clone.n_tasks == 2
    legacy = {k: (v[0] if k in ("mean", "inv_covariance") else v) for k, v in fitted.export_state().items()}
    params = {k: v for k, v in fitted.export_params().items() if k != "n_tasks"}
    old = Padim.from_state(params, legacy)  # a bundle written before the task axis
    with torch.no_grad():
        torch.testing.assert_close(old(synthetic_set["goods"][:2]), fitted(synthetic_set["goods"][:2]))


def test_running_statistics_merge_equals_fitting_on_the_union(fitted, synthetic_set):
    from edgead.models.padim.train import GaussianStats, gaussian_stats

    first, second = synthetic_set["train"]
    merged = gaussian_stats(fitted, [first]) + gaussian_stats(fitted, [second])
    union = gaussian_stats(fitted, [first, second])
    assert merged.count == union.count == 16
    torch.testing.assert_close(merged.total, union.total, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(merged.outer, union.outer, rtol=1e-12, atol=1e-9)
    recovered = GaussianStats.from_gaussians(fitted.mean[0], fitted.inv_covariance[0], 16, fitted.eps)
    torch.testing.assert_close(recovered.total, union.total, rtol=1e-4, atol=1e-3)
    again = GaussianStats.from_arrays(merged.to_arrays())
    assert again.count == 16 and torch.equal(again.outer, merged.outer)


def test_fit_refuses_a_multi_task_model():
    from edgead.errors import ConfigError

    with pytest.raises(ConfigError, match="n_tasks=1"):
        fit(Padim(INPUT_HW, n_features=8, pretrained=False, n_tasks=2), [torch.zeros(2, 3, *INPUT_HW)],
            progress=False)
