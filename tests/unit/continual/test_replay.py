"""The replay buffer: budget split, seeded uniform selection, shrinking, validation kept apart, no pickles."""
from __future__ import annotations

import numpy as np
import pytest

from edgead.continual.replay import ReplayBuffer, sample_indices, shares
from edgead.errors import BundleError, ConfigError


def _images(n, value, hw=(8, 10)):
    return [np.full((*hw, 3), value + i, np.uint8) for i in range(n)]


def test_budget_is_split_evenly_oldest_first():
    assert shares(10, 3) == [4, 3, 3]
    assert shares(0, 2) == [0, 0]
    with pytest.raises(ConfigError, match="budget"):
        shares(-1, 2)


def test_selection_is_seeded_uniform_and_bounded():
    a, b = sample_indices(50, 10, seed=3), sample_indices(50, 10, seed=3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 10 and a.max() < 50
    assert len(sample_indices(4, 10, seed=0)) == 4


def test_old_tasks_shrink_to_their_share_and_validation_is_kept():
    buf = ReplayBuffer.empty().add_task(_images(20, 0), _images(12, 100), budget=12, val_per_task=8)
    assert [len(a) for a in buf.replay] == [12] and [len(a) for a in buf.validation] == [8]
    first = {int(im[0, 0, 0]) for im in buf.replay[0]}
    buf = buf.add_task(_images(20, 50), _images(3, 150), budget=12, val_per_task=8)
    assert [len(a) for a in buf.replay] == [6, 6] and [len(a) for a in buf.validation] == [8, 3]
    assert {int(im[0, 0, 0]) for im in buf.replay[0]} <= first  # shrunk by dropping items, none new
    assert buf.replay_count == 12 and buf.replay_bytes == 12 * 8 * 10 * 3
    assert buf.validation_bytes == 11 * 8 * 10 * 3
    assert buf.summary()["per_task_replay"] == [6, 6]


def test_round_trip_without_pickles(tmp_path):
    buf = ReplayBuffer.empty().add_task(_images(5, 0), _images(4, 9), budget=3)
    buf = buf.add_task(_images(5, 20, hw=(6, 6)), _images(4, 30, hw=(6, 6)), budget=3)
    path = tmp_path / "replay.npz"
    path.write_bytes(buf.to_bytes())
    again = ReplayBuffer.load(path)
    assert again.n_tasks == 2
    for x, y in zip(buf.replay + buf.validation, again.replay + again.validation):
        assert np.array_equal(x, y) and y.dtype == np.uint8


def test_images_of_other_sizes_are_resized_to_the_first():
    buf = ReplayBuffer.empty().add_task(_images(1, 0) + _images(1, 0, hw=(16, 20)), [], budget=2)
    assert buf.replay[0].shape == (2, 8, 10, 3)


def test_unreadable_file_is_a_bundle_error(tmp_path):
    bad = tmp_path / "replay.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="replay buffer"):
        ReplayBuffer.load(bad)
