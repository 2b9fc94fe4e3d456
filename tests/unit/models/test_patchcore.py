"""PatchCore on synthetic parts: separation, localisation, the reweighted score, serialisation."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import BundleError, DataError  # noqa: E402
from edgead.models.patchcore import PatchCore, fit  # noqa: E402
from separation import assert_separates  # noqa: E402

INPUT_HW = (96, 128)  # as the synthetic set of conftest.py


@pytest.fixture(scope="module")
def fitted(synthetic_set):
    model = PatchCore(INPUT_HW, coreset_ratio=0.25)
    fit(model, synthetic_set["train"], progress=False)
    return model


def test_defects_score_higher_and_maps_peak_on_them(fitted, synthetic_set):
    with torch.no_grad():
        good_scores, good_maps = fitted(synthetic_set["goods"])
        bad_scores, bad_maps = fitted(synthetic_set["defects"])
    assert good_maps.shape == (8, *INPUT_HW)
    assert_separates(good_scores, bad_scores, min_auroc=0.95)
    for amap, mask in zip(bad_maps.numpy(), synthetic_set["masks"]):
        y, x = np.unravel_index(amap.argmax(), amap.shape)
        ys, xs = np.nonzero(mask)
        assert ys.min() - 12 <= y <= ys.max() + 12 and xs.min() - 12 <= x <= xs.max() + 12


def test_image_score_is_the_papers_reweighting(fitted, synthetic_set):
    x = synthetic_set["defects"][:2]
    with torch.no_grad():
        score, _ = fitted(x)
        feats = fitted.patches(x).reshape(2, -1, fitted.embed_dim).double()
    bank = fitted.memory_bank.double()
    for i in range(2):
        dist = torch.cdist(feats[i], bank)
        nn_dist, nn_idx = dist.min(1)
        worst = int(nn_dist.argmax())
        star = int(nn_idx[worst])
        support = fitted.bank_neighbors[star]
        assert int(support[0]) == star
        d_support = torch.cdist(feats[i][worst][None], bank[support])[0]
        expected = (1 - torch.exp(d_support[0]) / torch.exp(d_support).sum()) * nn_dist[worst]
        assert float(score[i]) == pytest.approx(float(expected), rel=1e-4)


def test_round_trip_through_params_and_state(fitted, synthetic_set):
    params, state = fitted.export_params(), fitted.export_state()
    assert set(state) == {"memory_bank", "bank_neighbors", "layer_scale"}
    assert all(isinstance(v, np.ndarray) for v in state.values())
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(yaml.safe_dump(params)) == params
    clone = PatchCore.from_state(params, state)
    with torch.no_grad():
        a, b = fitted(synthetic_set["goods"][:2]), clone(synthetic_set["goods"][:2])
    torch.testing.assert_close(a, b)


def test_from_state_refuses_other_backbone_weights_or_state(fitted):
    params = {**fitted.export_params(), "backbone_sha256": "0" * 64}
    with pytest.raises(BundleError, match="sha256"):
        PatchCore.from_state(params, fitted.export_state())
    state = fitted.export_state()
    state.pop("bank_neighbors")
    with pytest.raises(BundleError, match="missing"):
        PatchCore.from_state(fitted.export_params(), state)


def test_fit_checks_batches():
    model = PatchCore(INPUT_HW, pretrained=False)
    with pytest.raises(DataError, match="expected"):
        fit(model, [torch.zeros(1, 3, 32, 32)], progress=False)
    with pytest.raises(DataError, match="no training images"):
        fit(model, [], progress=False)


def test_channel_pooling_is_adaptive_average_pooling():
    model = PatchCore(INPUT_HW, feature_dim=50, pretrained=False)
    x = torch.randn(1, 3, *INPUT_HW)
    with torch.no_grad():
        pooled = model.embed(x)
        model.channel_pool = None
        full = model.embed(x)
    want = torch.nn.functional.adaptive_avg_pool1d(full.permute(0, 2, 3, 1).reshape(-1, 1, full.shape[1]), 50)
    torch.testing.assert_close(pooled.permute(0, 2, 3, 1).reshape(-1, 50), want.squeeze(1), rtol=1e-5, atol=1e-5)


def test_unfitted_model_refuses_to_score():
    from edgead.errors import ConfigError

    with pytest.raises(ConfigError, match="empty memory bank"):
        PatchCore(INPUT_HW, pretrained=False)(torch.zeros(1, 3, *INPUT_HW))


def test_default_grid_is_stride_4():
    model = PatchCore(INPUT_HW, pretrained=False)
    assert model.layers == ["block0", "block1", "block2"] and model.grid_hw == (24, 32)
    assert [tuple(m.shape[-2:]) for m in model.layer_maps(torch.zeros(1, 3, *INPUT_HW))] == [(24, 32)] * 3


def test_layer_scaling_weighs_every_stage_equally(synthetic_set):
    model = PatchCore(INPUT_HW, layers=["block2", "block4"], grid_layer="block2", coreset_ratio=0.25)
    fit(model, synthetic_set["train"], progress=False)
    rows = model.patches(synthetic_set["goods"])
    norms = [float(c.norm(dim=1).mean()) for c in rows.split(model._channels, dim=1)]
    assert all(0.7 < n < 1.4 for n in norms), norms  # about 1 each: no stage dominates the distance
    train_rows = torch.cat([model.raw_rows(b) for b in synthetic_set["train"]]).split(model._channels, dim=1)
    torch.testing.assert_close(model.layer_scale, torch.stack([1.0 / c.norm(dim=1).mean() for c in train_rows]))


def test_finer_layers_are_area_pooled_onto_the_grid():
    model = PatchCore((100, 132), layers=["block1", "block2", "block3"], grid_layer="block2",
                      pretrained=False)  # odd grids: block1 25x33 -> block2 13x17 (ceil)
    x = torch.randn(1, 3, 100, 132)
    maps = model.layer_maps(x)
    assert [tuple(m.shape[-2:]) for m in maps] == [(13, 17)] * 3
    feats = model.backbone.features(x, ["block1"])["block1"]
    local = torch.nn.functional.avg_pool2d(feats, 3, 1, 1)
    torch.testing.assert_close(maps[0][0, :, 0, 0], local[0, :, :2, :2].mean(dim=(1, 2)))


def test_bundles_without_the_new_parameters_load_as_trained(synthetic_set):
    old = PatchCore(INPUT_HW, layers=["block2", "block4"], grid_layer=None, layer_scaling="none",
                    coreset_ratio=0.25)
    fit(old, synthetic_set["train"], progress=False)
    params = {k: v for k, v in old.export_params().items() if k not in ("grid_layer", "layer_scaling")}
    again = PatchCore.from_state(params, old.export_state())
    assert again.layer_scale is None and again.grid_layer == "block2" and again.grid_hw == old.grid_hw
    with torch.no_grad():
        torch.testing.assert_close(again(synthetic_set["goods"])[0], old(synthetic_set["goods"])[0])


def test_patch_size_is_the_local_neighbourhood_averaged():
    from edgead.errors import ConfigError

    x = torch.randn(1, 3, *INPUT_HW)
    one, five = (PatchCore(INPUT_HW, layers=["block1"], pretrained=False, patch_size=p) for p in (1, 5))
    five.load_state_dict(one.state_dict())
    feats = one.backbone.features(x, ["block1"])["block1"]
    torch.testing.assert_close(one.layer_maps(x)[0], feats)  # 1: the stage's own features
    expected = torch.nn.functional.avg_pool2d(feats, 5, 1, 2)
    torch.testing.assert_close(five.layer_maps(x)[0], expected)
    assert five.export_params()["patch_size"] == 5
    assert PatchCore(INPUT_HW, pretrained=False).patch_size == 3  # the paper's
    with pytest.raises(ConfigError, match="patch_size=4 must be odd"):
        PatchCore(INPUT_HW, pretrained=False, patch_size=4)
