"""Replay and naive fine-tuning of a trained model.

Forgetting setting (slow): DRAEM (widths 8, 150 steps at 64x96) learns task ``a``, then task ``b`` (the same
station with inverted images, a re-rigged light) for 150 more steps. With 12 replay images (half of each batch) it
keeps task ``a``; naive fine-tuning keeps less of it. How much less depends on the CPU's kernels and the library
versions, so the test asserts the comparison with a margin, not one run's drop. Image AUROC on task ``a`` (before
-> naive / replay), measured: 0.86 -> 0.39 / 1.00 (the author's machine); 0.72 -> 0.56 / 0.81 and, with seed 1,
0.69 -> 0.67 / 0.97 (AVX-512 machine, the locked stack). So: replay at most 0.05 below before (replay - before was
+0.08 and +0.28 here), and at least 0.15 above naive (0.25 and 0.31 here). With 40 steps and widths 4 the model
does not learn task ``a`` well enough (AUROC 0.64) for forgetting to show, and AE-kNN (8 epochs) neither (0.69),
hence the slow marker.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch")

from edgead.continual.trained import MixedBatches  # noqa: E402
from edgead.errors import ConfigError  # noqa: E402
from separation import record  # noqa: E402


class _Pre:
    """Stand-in preprocessing: uint8 [1, H, W, 3] -> float [1, 3, H, W] (isolates the mixing from the backbone)."""

    def __call__(self, x):
        return x.permute(0, 3, 1, 2).float()


def _images(n, value):
    return [np.full((4, 4, 3), value, np.uint8) for _ in range(n)]


def test_every_batch_mixes_replay_images_in_the_stated_share():
    data = MixedBatches(_images(10, 1), _images(3, 200), _Pre(), 4, replay_fraction=0.5, seed=0)
    batches = list(data)
    assert len(batches) == len(data) == 3
    for batch in batches:
        values = batch[:, 0, 0, 0]
        new, old = int((values == 1).sum()), int((values == 200).sum())
        assert old == data.replay_per_batch == 4 and new in (4, 2)
    assert sum(int((b[:, 0, 0, 0] == 1).sum()) for b in batches) == 10  # every new image once per epoch


def test_naive_batches_have_no_replay_and_fraction_is_checked():
    assert all(int((b[:, 0, 0, 0] == 200).sum()) == 0 for b in MixedBatches(_images(5, 1), [], _Pre(), 2))
    with pytest.raises(ConfigError, match="replay_fraction"):
        MixedBatches(_images(5, 1), _images(2, 200), _Pre(), 2, replay_fraction=1.0)


def test_replay_needs_replay_images(cl, tasks, tmp_path):
    from edgead.continual.update import update_bundle_with_task

    bundle = cl.train_bundle(tasks.a, tmp_path / "draem", "draem", steps=2, rec_width=4, disc_width=4)
    with pytest.raises(ConfigError, match="no image of the old tasks"):
        update_bundle_with_task(bundle.root, tasks.b, tmp_path / "x", strategy="replay", replay=0)
    naive = update_bundle_with_task(bundle.root, tasks.b, tmp_path / "naive", strategy="naive",
                                    options=_options(steps=2))
    assert naive.bundle.meta.tasks[-1].strategy == "naive"


def _options(**fit):
    from edgead.continual.context import UpdateOptions

    return UpdateOptions(fit_options=fit)


@pytest.mark.slow
def test_replay_keeps_the_old_task_where_naive_forgets(cl, tasks, tmp_path):
    from sklearn.metrics import roc_auc_score

    from edgead.continual.update import update_bundle_with_task

    bundle = cl.train_bundle(tasks.a, tmp_path / "a", "draem", steps=150)
    images, labels = cl.test_split(tasks.a)
    before = roc_auc_score(labels, cl.raw_scores(bundle, images))
    naive = update_bundle_with_task(bundle.root, tasks.b, tmp_path / "naive", strategy="naive")
    replay = update_bundle_with_task(bundle.root, tasks.b, tmp_path / "replay", strategy="replay", replay=12)
    after_naive = roc_auc_score(labels, cl.raw_scores(naive.bundle, images))
    after_replay = roc_auc_score(labels, cl.raw_scores(replay.bundle, images))
    record("task a before", value=before)
    record("task a after naive", value=after_naive)
    record("task a after replay", value=after_replay)
    assert before >= 0.6, "DRAEM did not learn task a; nothing to forget"
    assert after_replay >= before - 0.05, "replay lost task a"
    assert after_replay - after_naive >= 0.15, "replay kept no more of task a than naive fine-tuning"
    assert replay.replay["per_task_replay"] == [6, 6]
