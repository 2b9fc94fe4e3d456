"""PIADE on tiny synthetic parts: separation, vector selection, ONNX parity, serialisation."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import BundleError, ConfigError  # noqa: E402
from edgead.models.common import smoothed_max  # noqa: E402
from edgead.models.piade import Piade, fit  # noqa: E402
from edgead.models.piade.torch_model import ImageScore  # noqa: E402
from defects import paste_foreign_patch  # noqa: E402
from separation import assert_separates  # noqa: E402


@pytest.fixture(scope="module")
def fitted(one_thread, small_set):
    # A shallow encoder (stride 8) and one perceptual layer keep the backward pass through the backbone short.
    model = Piade(small_set["hw"], feature_layer="block2", perceptual_layers=["stem"], epochs=6, lr=3e-3)
    fit(model, list(small_set["train"][0].split(2)), progress=False)  # 8 images, 4 steps per epoch
    return model


def test_defects_score_higher_and_score_is_map_mean(fitted, small_set):
    with torch.no_grad():
        good, _ = fitted(small_set["goods"])
        bad, bad_maps = fitted(small_set["defects"])
    assert bad_maps.shape == (8, *small_set["hw"])
    torch.testing.assert_close(bad, bad_maps.mean(dim=(1, 2)))
    # The loss score (a mean over the map) barely moves for the conftest's few-pixel defects (AUROC 0.92-1.0 by seed
    # and kernel); a foreign patch moves it by a margin (gap 0.22-0.25 over seeds 0-2).
    with torch.no_grad():
        obvious, _ = fitted(paste_foreign_patch(small_set["defects"], seed=1))
    assert assert_separates(good, obvious, min_auroc=1.0, name="loss score").gap >= 0.05


@pytest.fixture
def map_max(fitted):
    """The fitted model scoring by the filtered map maximum (the registry default), restored afterwards."""
    fitted.image_score = ImageScore.MAP_MAX
    yield fitted
    fitted.image_score = ImageScore.LOSS


def test_map_max_score_is_the_filtered_map_maximum(map_max, small_set):
    with torch.no_grad():
        good, _ = map_max(small_set["goods"])
        bad, bad_maps = map_max(small_set["defects"])
    assert map_max.filter_px == 5  # 21 px at 256 scaled to the 64 px test parts
    torch.testing.assert_close(bad, smoothed_max(bad_maps, 5))
    assert_separates(good, bad, min_auroc=0.85, name="map-max score")


def test_map_max_exports_with_parity(map_max, small_set, onnx_parity):
    x = torch.cat([small_set["goods"][:2], small_set["defects"][:3]])
    onnx_parity(map_max, x[:2], x, forbidden=())


def test_image_score_is_recorded_and_checked(small_set):
    assert Piade(small_set["hw"], feature_layer="block2", pretrained=False).export_params()["image_score"] == "loss"
    with pytest.raises(ConfigError, match="image_score"):
        Piade(small_set["hw"], feature_layer="block2", image_score="median", pretrained=False)


def test_backbone_is_frozen_and_se_trained(fitted):
    assert not any(p.requires_grad for p in fitted.backbone.parameters())
    assert len(fitted.se) == 3 and all(p.requires_grad for p in fitted.se.parameters())
    assert fitted.pyramid.n_capsules == (64 + 16 + 4 + 1) * 64 // 8


def test_onnx_export_matches_torch(fitted, small_set, onnx_parity):
    x = torch.cat([small_set["goods"][:2], small_set["defects"][:3]])
    onnx_parity(fitted, x[:2], x, forbidden=())


def test_round_trip_and_sha_check(fitted, small_set):
    params, state = fitted.export_params(), fitted.export_state()
    assert not any(k.startswith("backbone.") for k in state)
    clone = Piade.from_state(params, state)
    x = small_set["goods"][:2]
    with torch.no_grad():
        torch.testing.assert_close(clone(x), fitted(x))
    with pytest.raises(BundleError, match="sha256"):
        Piade.from_state({**params, "backbone_sha256": "0" * 64}, state)


def test_rejects_unknown_feature_layer(small_set):
    with pytest.raises(ConfigError, match="feature_layer"):
        Piade(small_set["hw"], feature_layer="head", pretrained=False)
