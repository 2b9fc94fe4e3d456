"""Greedy k-center coreset and the bank's neighbour table."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.errors import ConfigError  # noqa: E402
from edgead.models.patchcore.coreset import greedy_coreset, nearest_neighbors  # noqa: E402


def test_coreset_covers_every_cluster():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 200, generator=gen) * 50
    points = torch.cat([c + torch.randn(100, 200, generator=gen) for c in centres])
    picked = greedy_coreset(points, 5, projection_dim=128, seed=1, progress=False)
    assert sorted((picked // 100).tolist()) == [0, 1, 2, 3, 4]
    assert len(set(picked.tolist())) == 5


def test_coreset_is_farthest_point_without_projection():
    points = torch.tensor([[0.0], [1.0], [10.0], [4.0], [6.0]])
    picked = greedy_coreset(points, 3, projection_dim=0, seed=0, progress=False).tolist()
    first = picked[0]
    far = 2 if points[first] < 5 else 0
    assert picked[1] == far


def test_coreset_size_is_checked():
    with pytest.raises(ConfigError, match="coreset size"):
        greedy_coreset(torch.zeros(4, 2), 5, progress=False)


def test_nearest_neighbors_itself_first_and_exact():
    gen = torch.Generator().manual_seed(0)
    bank = torch.randn(300, 16, generator=gen)
    bank[7] = bank[8]  # a duplicate row still lists itself first
    idx = nearest_neighbors(bank, 4, chunk=64)
    assert idx[:, 0].tolist() == list(range(300))
    brute = torch.cdist(bank, bank).topk(4, largest=False).indices
    assert set(idx[0].tolist()) == set(brute[0].tolist())
    assert idx[7, 1] == 8
    with pytest.raises(ConfigError, match="num_neighbors"):
        nearest_neighbors(bank[:3], 4)
