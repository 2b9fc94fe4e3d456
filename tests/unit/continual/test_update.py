"""``update_bundle_with_task`` with the memory-bank models: bank extension, PaDiM strategies, the recalibrated
threshold over every task, the tasks section, and clear errors on bad input."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgead.continual.history import task_history
from edgead.continual.replay import REPLAY_FILE, ReplayBuffer
from edgead.errors import ConfigError, DataError
from separation import assert_separates


@pytest.fixture(scope="module")
def patchcore_ab(patchcore_a, tasks, tmp_path_factory):
    from edgead.continual.update import update_bundle_with_task

    return update_bundle_with_task(patchcore_a.root, tasks.b, tmp_path_factory.mktemp("pcab") / "ab")


def test_bank_extension_keeps_old_task_scores_exactly(cl, patchcore_a, patchcore_ab, tasks):
    images, _ = cl.test_split(tasks.a)
    assert np.array_equal(cl.raw_scores(patchcore_a, images), cl.raw_scores(patchcore_ab.bundle, images))
    info = patchcore_ab.info
    assert info["old_rows_kept"] and info["bank_after"] > info["bank_before"]


def test_bank_extension_learns_the_new_task(cl, patchcore_a, patchcore_ab, tasks):
    images, labels = cl.test_split(tasks.b)
    scores = cl.raw_scores(patchcore_ab.bundle, images)
    assert_separates(scores[labels == 0], scores[labels == 1], min_auroc=0.8)
    # the old bundle never saw task b: its good images look anomalous to it
    good = [im for im, lab in zip(images, labels) if lab == 0]
    assert cl.raw_scores(patchcore_a, good).min() > patchcore_a.meta.calibration.image.thr


def test_threshold_is_recalibrated_on_every_task(cl, patchcore_ab):
    bundle = patchcore_ab.bundle
    buffer = ReplayBuffer.load(bundle.file(REPLAY_FILE))
    assert buffer.n_tasks == 2 and all(len(v) >= 3 for v in buffer.validation)
    assert bundle.meta.training.n_validation == buffer.validation_count
    thr = bundle.meta.calibration.image.thr
    for task, val in zip(task_history(bundle.meta), buffer.validation):
        assert cl.raw_scores(bundle, list(val)).max() < thr, f"task {task.name}: good validation images rejected"


def test_tasks_section_records_the_history(patchcore_ab, tasks):
    history = task_history(patchcore_ab.bundle.meta)
    assert [t.name for t in history] == ["a", "b"]
    assert [t.strategy for t in history] == ["fresh", "bank-extension"]
    assert history[1].data == str(tasks.b.resolve()) and history[1].n_images > 0
    assert patchcore_ab.bundle.meta.replay.validation_bytes > 0


def test_bank_cap_bounds_the_bank(patchcore_a, tasks, tmp_path):
    from edgead.continual.context import UpdateOptions
    from edgead.continual.update import update_bundle_with_task

    cap = patchcore_a.meta.model.params["bank_size"]
    result = update_bundle_with_task(patchcore_a.root, tasks.b, tmp_path / "capped",
                                     options=UpdateOptions(max_bank=cap))
    assert result.info["bank_after"] == cap and not result.info["old_rows_kept"]


def test_padim_strategies(cl, padim_a, tasks, tmp_path):
    from edgead.continual.banks import PADIM_STATS
    from edgead.continual.update import update_bundle_with_task

    per_task = update_bundle_with_task(padim_a.root, tasks.b, tmp_path / "per-task")
    assert per_task.bundle.meta.model.params["n_tasks"] == 2
    for data in (tasks.a, tasks.b):
        images, labels = cl.test_split(data)
        scores = cl.raw_scores(per_task.bundle, images)
        assert_separates(scores[labels == 0], scores[labels == 1], min_auroc=0.8, name=f"task {data.name}")
    running = update_bundle_with_task(padim_a.root, tasks.c, tmp_path / "running", strategy="running")
    assert PADIM_STATS in running.bundle.manifest["files"]
    again = update_bundle_with_task(running.bundle, tasks.b, tmp_path / "running2", strategy="running")
    assert again.info["images_in_gaussian"] == running.info["images_in_gaussian"] + again.task.n_images
    assert [t.name for t in task_history(again.bundle.meta)] == ["a", "c", "b"]


def test_unknown_strategy_for_the_model_type(patchcore_a, tasks, tmp_path):
    from edgead.continual.update import update_bundle_with_task

    with pytest.raises(ConfigError, match="does not apply to patchcore"):
        update_bundle_with_task(patchcore_a.root, tasks.b, tmp_path / "x", strategy="replay")
    with pytest.raises(ConfigError, match="unknown strategy"):
        update_bundle_with_task(patchcore_a.root, tasks.b, tmp_path / "x", strategy="ewc")


def test_data_of_another_colour_or_size_is_refused(cl, patchcore_a, tasks, tmp_path):
    from edgead.data.synthetic import StationSpec, generate_dataset
    from edgead.continual.update import update_bundle_with_task

    gray = generate_dataset(tmp_path / "gray", StationSpec(height=96, width=128, color="gray"), n_train=8,
                            n_test_good=0, n_test_defect=0)
    with pytest.raises(DataError, match="is gray, the bundle takes rgb"):
        update_bundle_with_task(patchcore_a.root, gray, tmp_path / "x")
    tall = cl.make_task(tmp_path, "tall", n_train=8)
    import cv2

    for path in (tall / "train").rglob("*.png"):
        cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path)), (96, 160)))
    with pytest.raises(DataError, match="aspect"):
        update_bundle_with_task(patchcore_a.root, tall, tmp_path / "y")


def test_first_update_needs_the_first_task_data(patchcore_a, tasks, tmp_path):
    from edgead.bundle import update_bundle
    from edgead.continual.update import update_bundle_with_task

    gone = dataclasses.replace(patchcore_a.meta.training, data=str(tmp_path / "gone"))
    meta = patchcore_a.meta.replace(training=gone)
    moved = update_bundle(patchcore_a, meta=meta, out_dir=tmp_path / "moved")
    with pytest.raises(DataError, match="no replay buffer"):
        update_bundle_with_task(moved, tasks.b, tmp_path / "x")
