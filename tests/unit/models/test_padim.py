"""PaDiM on synthetic parts: separation, localisation, the running-sum Gaussians, serialisation."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")
metrics = pytest.importorskip("sklearn.metrics", reason="needs scikit-learn")

from edgead.errors import DataError  # noqa: E402
from edgead.models.padim import Padim, fit  # noqa: E402

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
    labels = [0] * 8 + [1] * 8
    assert metrics.roc_auc_score(labels, torch.cat([good_scores, bad_scores]).numpy()) >= 0.95
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
    np.testing.assert_allclose(fitted.mean[pos].numpy(), emb[:, pos].mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        fitted.inv_covariance[pos].double().numpy() @ cov, np.eye(emb.shape[2]), atol=1e-3
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
