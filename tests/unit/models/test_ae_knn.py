"""AE-kNN on tiny synthetic parts: in-graph patch cut/stitch, separation, ONNX parity, serialisation."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import ConfigError  # noqa: E402
from edgead.models.ae_knn import AeKnn, fit  # noqa: E402
from edgead.models.ae_knn.patches import PatchGrid  # noqa: E402
from separation import assert_separates  # noqa: E402


@pytest.fixture(scope="module")
def fitted(small_set):
    model = AeKnn(small_set["hw"], downscale=1, epochs=4)
    fit(model, small_set["train"], progress=False)
    return model


def test_patch_cut_and_stitch_are_exact():
    grid = PatchGrid((64, 96), patch=32, stride=16)
    x = torch.randn(2, 3, 64, 96)
    patches = grid.cut(x)
    assert patches.shape == (2, 3 * 5, 3, 32, 32)
    torch.testing.assert_close(patches[1, 5 + 2], x[1, :, 16:48, 32:64])  # row 1, column 2
    torch.testing.assert_close(grid.stitch_sum(patches) / grid.overlap(), x)
    assert float(grid.overlap().max()) == 4.0 and float(grid.overlap().min()) == 1.0


def test_defects_score_higher(fitted, small_set):
    assert fitted.k == 15 and fitted.bank.shape == (16, 3 * 112)
    with torch.no_grad():
        good, _ = fitted(small_set["goods"])
        bad, bad_maps = fitted(small_set["defects"])
    assert bad_maps.shape == (8, *small_set["hw"])
    assert_separates(good, bad, min_auroc=0.85)


def test_onnx_export_matches_torch(fitted, small_set, onnx_parity):
    x = torch.cat([small_set["goods"][:2], small_set["defects"][:3]])
    onnx_parity(fitted, x[:2], x, forbidden=("Col2Im",))


def test_round_trip(fitted, small_set):
    clone = AeKnn.from_state(fitted.export_params(), fitted.export_state())
    x = small_set["goods"][:2]
    with torch.no_grad():
        torch.testing.assert_close(clone(x), fitted(x))


def test_unfitted_and_bad_sizes_raise(small_set):
    model = AeKnn(small_set["hw"], downscale=1, pretrained=False)
    with pytest.raises(ConfigError, match="fit the model"):
        model(torch.zeros(1, 3, *small_set["hw"]))
    with pytest.raises(ConfigError, match="multiples"):
        AeKnn((64, 80), pretrained=False)
