"""The Perlin anomaly simulator of DRAEM: binary, non-empty masks at the set rate, seeded, smooth at the set scale."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.errors import ConfigError
from edgead.models.perlin import TEXTURES, perlin_mask, perlin_noise, random_texture, simulate_anomaly

SHAPE = (64, 80)


def test_noise_is_bounded_and_smooth_at_its_scale():
    rng = np.random.default_rng(0)
    coarse = perlin_noise(SHAPE, (2, 2), rng)
    fine = perlin_noise(SHAPE, (16, 16), rng)
    assert coarse.shape == SHAPE and coarse.dtype == np.float32
    assert np.abs(coarse).max() <= 1.0 and np.abs(fine).max() <= 1.0
    # a neighbour step is a small part of the range, and grows with the number of cells
    step = lambda a: np.abs(np.diff(a, axis=1)).mean()  # noqa: E731
    assert step(coarse) < 0.03 and 0.06 < step(fine) < 0.3


def test_masks_are_binary_non_empty_and_seeded():
    masks = [perlin_mask(SHAPE, np.random.default_rng(seed)) for seed in range(20)]
    assert all(m.dtype == bool and m.shape == SHAPE and m.any() for m in masks)
    assert np.array_equal(perlin_mask(SHAPE, np.random.default_rng(3)), masks[3])
    assert not all(np.array_equal(masks[0], m) for m in masks[1:])
    area = np.mean([m.mean() for m in masks])
    assert 0.005 < area < 0.3  # blobs, not the whole image


def test_anomaly_rate_and_blend():
    rng = np.random.default_rng(1)
    image = np.full((*SHAPE, 3), 0.5, np.float32)
    results = [simulate_anomaly(image, rng, probability=0.5) for _ in range(200)]
    rate = np.mean([mask.any() for _, mask in results])
    assert 0.4 < rate < 0.6
    for out, mask in results:
        assert np.array_equal(out[~mask], image[~mask])  # outside the mask the image is untouched
        assert out.min() >= 0.0 and out.max() <= 1.0
    changed = [np.abs(out[mask] - 0.5).mean() for out, mask in results if mask.any()]
    assert np.mean(changed) > 0.02


def test_textures_cover_every_family():
    rng = np.random.default_rng(2)
    for make in TEXTURES.values():
        tex = make(SHAPE, rng)
        assert tex.shape == (*SHAPE, 3) and tex.std() > 0.01
    tex = random_texture(SHAPE, rng)
    assert tex.dtype == np.float32 and 0.0 <= tex.min() and tex.max() <= 1.0


def test_impossible_threshold_is_a_config_error():
    with pytest.raises(ConfigError, match="threshold"):
        perlin_mask(SHAPE, np.random.default_rng(0), threshold=1.01, max_tries=3)


def test_simulate_anomaly_takes_its_texture_from_the_given_source():
    rng = np.random.default_rng(0)
    image = np.zeros((32, 32, 3), np.float32)
    out, mask = simulate_anomaly(image, rng, probability=1.0, beta_range=(0.0, 0.0),
                                 texture_fn=lambda shape, _rng: np.full((*shape, 3), 0.75, np.float32))
    assert mask.any()
    np.testing.assert_allclose(out[mask], 0.75)  # beta 0: the texture alone inside the mask
    assert (out[~mask] == 0).all()
