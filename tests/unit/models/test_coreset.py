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


def _plain_farthest_point(points: "torch.Tensor", count: int, first: int, preselected: int = 0) -> list[int]:
    """The textbook loop in float64: every centre updates every point; argmax takes the lowest index of a tie."""
    points = points.double()
    min_dist = torch.full((points.shape[0],), float("inf"), dtype=torch.float64)
    picked, current = [], first
    for i in range(count):
        picked.append(current)
        min_dist = torch.minimum(min_dist, ((points - points[current]) ** 2).sum(1))
        current = i + 1 if i + 1 < preselected else int(torch.argmax(min_dist))
    return picked


@pytest.mark.parametrize("block_rows", [1, 3, 7, 64, 4096])
def test_blocked_selection_is_the_plain_loop_on_integer_points(monkeypatch, block_rows):
    """Integer coordinates make every squared distance exact in float32, and give many ties: the blocked CPU
    selection (centres queued per block) must pick the plain loop's centres, in its order, ties included."""
    import edgead.models.patchcore.coreset as coreset

    monkeypatch.setattr(coreset, "_BLOCK_ROWS", block_rows)
    monkeypatch.setattr(coreset, "_CENTRE_CHUNK", 2)  # several matrix products per refresh
    gen = torch.Generator().manual_seed(3)
    points = torch.randint(-6, 7, (50, 4), generator=gen).float()
    first = int(torch.randint(50, (1,), generator=torch.Generator().manual_seed(0)))  # greedy_coreset's seed 0
    picked = greedy_coreset(points, 20, projection_dim=0, seed=0, progress=False).tolist()
    assert picked == _plain_farthest_point(points, 20, first)


def test_blocked_selection_keeps_the_preselected_rows_first(monkeypatch):
    import edgead.models.patchcore.coreset as coreset

    monkeypatch.setattr(coreset, "_BLOCK_ROWS", 4)
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [9.0, 9.0], [0.0, 1.0], [5.0, 0.0], [0.0, 7.0], [3.0, 3.0]])
    picked = greedy_coreset(points, 5, projection_dim=0, progress=False, preselected=2).tolist()
    assert picked[:2] == [0, 1] and picked == _plain_farthest_point(points, 5, 0, preselected=2)
    assert picked[2] == 2  # (9, 9): the farthest from both preselected rows
