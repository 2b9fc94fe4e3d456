"""SSIM against scikit-image, the perceptual loss/map consistency, and the filtered map maximum."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")
skimage_metrics = pytest.importorskip("skimage.metrics", reason="needs scikit-image")

from edgead.models.backbone import build_backbone  # noqa: E402
from edgead.models.losses import perceptual_loss, perceptual_map, ssim, ssim_map, to_unit_range  # noqa: E402


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 3, 24, 32)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))


def test_ssim_matches_scikit_image_away_from_the_border():
    rng = np.random.default_rng(0)
    a = rng.random((40, 48)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    _, want = skimage_metrics.structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
    got = ssim_map(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])[0].numpy()
    np.testing.assert_allclose(got[5:-5, 5:-5], want[5:-5, 5:-5], atol=1e-6)


def test_ssim_drops_with_noise():
    x = torch.rand(1, 3, 32, 32)
    assert float(ssim(x, (x + 0.3 * torch.randn_like(x)).clamp(0, 1))) < 0.8


def test_to_unit_range_inverts_normalisation():
    x = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(to_unit_range((x - 0.5) / 0.25, (0.5,) * 3, (0.25,) * 3), x)


def test_perceptual_map_mean_tracks_the_loss():
    backbone = build_backbone(pretrained=False)
    x, y = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        loss = perceptual_loss(backbone, x, y, ["stem", "block1"])
        amap = perceptual_map(backbone, x, y, ["stem", "block1"])
        assert float(perceptual_loss(backbone, x, x, ["stem"]).abs().max()) == 0.0
    assert amap.shape == (2, 32, 32)
    np.testing.assert_allclose(amap.mean(dim=(1, 2)).numpy(), loss.numpy(), rtol=0.1)


def test_smoothed_max_needs_an_area_not_a_pixel():
    from edgead.models.common import filter_size, smoothed_max

    spot, block = torch.zeros(1, 32, 32), torch.zeros(1, 32, 32)
    spot[0, 16, 16] = 9.0  # one bright pixel: diluted by the 3x3 mean
    block[0, 10:13, 10:13] = 1.0  # a 3x3 defect: survives it
    torch.testing.assert_close(smoothed_max(torch.cat([spot, block]), 3), torch.tensor([1.0, 1.0]))
    assert filter_size((256, 256)) == 21 and filter_size((64, 64)) == 5
