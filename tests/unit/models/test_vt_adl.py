"""VT-ADL on tiny synthetic parts: separation, the MDN likelihood by hand, ONNX parity, serialisation."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import ConfigError  # noqa: E402
from edgead.models.vt_adl import VTADL, fit  # noqa: E402
from edgead.models.vt_adl.mdn import log_sum_exp, mixture_log_likelihood  # noqa: E402
from separation import assert_separates  # noqa: E402


@pytest.fixture(scope="module")
def fitted(one_thread, small_set):
    # 20 epochs (the registry's default): at 10 the fit collapsed for one seed in three (AUROC 0.38) and reached
    # 0.86 for seed 0, a pair from the bound; at 20, AUROC 1.0 with a gap of 1.3-3.4 for seeds 0-2.
    model = VTADL(small_set["hw"], n_gaussians=16, epochs=20, pretrained=False)
    fit(model, small_set["train"], progress=False)
    return model


def test_defects_score_higher(fitted, small_set):
    with torch.no_grad():
        good, good_maps = fitted(small_set["goods"])
        bad, _ = fitted(small_set["defects"])
    assert good_maps.shape == (8, *small_set["hw"])
    assert_separates(good, bad, min_auroc=0.95)


def test_mixture_likelihood_two_gaussians_in_2d_by_hand():
    z = torch.tensor([[1.0, 0.0]])
    log_pi = torch.log(torch.tensor([[0.25, 0.75]]))
    mu = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    sigma = torch.tensor([[[1.0, 1.0], [2.0, 0.5]]])
    # N1 at (1,0): exp(-0.5 * 1) / (2 pi); N2: exp(-0.5 * (0 + (1/0.5)^2)) / (2 pi * 2 * 0.5)
    p = 0.25 * math.exp(-0.5) / (2 * math.pi) + 0.75 * math.exp(-2.0) / (2 * math.pi * 1.0)
    assert float(mixture_log_likelihood(z, log_pi, mu, sigma)) == pytest.approx(math.log(p), rel=1e-6)


def test_log_sum_exp_is_stable():
    a = torch.tensor([1000.0, 1000.0, -1000.0])
    assert float(log_sum_exp(a)) == pytest.approx(1000.0 + math.log(2.0))


def test_onnx_export_matches_torch(fitted, small_set, onnx_parity):
    x = torch.cat([small_set["goods"][:2], small_set["defects"][:3]])
    onnx_parity(fitted, x[:2], x, forbidden=("RandomNormalLike",))


def test_round_trip(fitted, small_set):
    clone = VTADL.from_state(fitted.export_params(), fitted.export_state())
    x = small_set["goods"][:2]
    with torch.no_grad():
        torch.testing.assert_close(clone(x), fitted(x))


def test_rejects_sizes_not_multiple_of_patch():
    with pytest.raises(ConfigError, match="multiples of patch_size"):
        VTADL((72, 64), pretrained=False)
