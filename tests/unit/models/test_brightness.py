"""Brightness levelling (``brightness=mean``) of the reconstruction models: a uniformly brighter or darker part
scores as the part itself; with ``keep`` it does not."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import ConfigError  # noqa: E402
from edgead.models.common import Brightness, level_brightness  # noqa: E402
from edgead.models.registry import build, model_params  # noqa: E402


def _map(name: str, model, x):
    with torch.no_grad():
        return model.anomaly_map(x) if name == "ae-knn" else model(x)[1]


def test_levelling_sets_each_images_mean_grey_to_mid_grey():
    mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.5)
    unit = torch.rand(3, 3, 8, 8) * 0.3  # dark images
    out = level_brightness((unit - mean) / std, Brightness.MEAN, mean, std) * std + mean
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.full((3,), 0.5))
    torch.testing.assert_close(out - out.mean(dim=(1, 2, 3), keepdim=True),
                               unit - unit.mean(dim=(1, 2, 3), keepdim=True))  # the pattern stays
    x = torch.randn(2, 3, 4, 4)
    assert level_brightness(x, Brightness.KEEP, mean, std) is x


@pytest.mark.parametrize("name", ["ae-knn", "piade"])
def test_a_brightness_shift_changes_the_map_only_without_levelling(name, small_set):
    x = small_set["goods"][:2]
    brighter = x + 0.2  # +0.1 on the [0, 1] scale (mean and std 0.5)
    keep = build(name, small_set["hw"], pretrained=False).eval()
    level = build(name, small_set["hw"], pretrained=False, brightness="mean").eval()
    torch.testing.assert_close(_map(name, level, brighter), _map(name, level, x), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(_map(name, keep, brighter), _map(name, keep, x), atol=1e-3)
    assert level.export_params()["brightness"] == "mean"
    clone = type(level).from_state(level.export_params(), level.export_state())
    assert clone.brightness is Brightness.MEAN


@pytest.mark.parametrize("name", ["ae-knn", "piade"])
def test_brightness_is_a_parameter_keep_by_default_and_checked(name, small_set):
    assert model_params(name)["brightness"] == "keep"
    with pytest.raises(ConfigError, match="brightness 'median' unknown"):
        build(name, small_set["hw"], pretrained=False, brightness="median")
