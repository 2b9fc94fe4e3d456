"""Small synthetic task sequences for the continual tests: the synthetic station, and variants of it.

Task ``a`` is the station's part; task ``b`` is the same station with its images inverted (a re-rigged light: every
patch differs from task ``a``'s), task ``c`` another part design (``part_seed``). Tiny images, few of them.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch", reason="continual updates need torch (extra [train])")

HW = (96, 128)
IMAGE_SIZE = (64, 96)


def make_task(root: Path, name: str, *, part_seed: int = 0, invert: bool = False, seed: int = 0,
              n_train: int = 16) -> Path:
    """Write one task in the MVTec layout (``invert``: every image, not the masks, is inverted)."""
    import cv2

    from edgead.data.synthetic import StationSpec, generate_dataset

    spec = StationSpec(height=HW[0], width=HW[1], part_seed=part_seed, max_shift_px=0.0, max_rotation_deg=0.0)
    out = generate_dataset(root / name, spec, n_train=n_train, n_test_good=6, n_test_defect=6, seed=seed)
    if invert:
        for path in list((out / "train").rglob("*.png")) + list((out / "test").rglob("*.png")):
            cv2.imwrite(str(path), 255 - cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    return out


@pytest.fixture(scope="session")
def tasks(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("tasks")
    return SimpleNamespace(a=make_task(root, "a"), b=make_task(root, "b", invert=True, seed=1),
                           c=make_task(root, "c", part_seed=3, seed=2), root=root)


def train_bundle(data: Path, out: Path, model: str, **params):
    from edgead.train.pipeline import TrainConfig, train

    cfg = TrainConfig(model=model, image_size=IMAGE_SIZE, seed=0, val_fraction=0.25, params=params, evaluate=False,
                      preset="quick")
    return train(data, out, cfg, progress=False).bundle


@pytest.fixture(scope="session")
def patchcore_a(tasks, tmp_path_factory):
    """PatchCore trained on task a."""
    return train_bundle(tasks.a, tmp_path_factory.mktemp("pc") / "a", "patchcore", coreset_ratio=0.1,
                        num_neighbors=3)


@pytest.fixture(scope="session")
def padim_a(tasks, tmp_path_factory):
    """PaDiM trained on task a."""
    return train_bundle(tasks.a, tmp_path_factory.mktemp("pd") / "a", "padim", n_features=32)


def raw_scores(bundle, images) -> np.ndarray:
    """Raw image scores of a bundle's ONNX graph (ONNX Runtime), one image at a time."""
    from edgead.infer.onnxrt import OnnxRuntimeBackend

    with OnnxRuntimeBackend(bundle.onnx_path) as eng:
        return np.concatenate([eng.infer(im[None]).raw_score for im in images])


def test_split(data: Path, color="rgb"):
    """The test split's images and labels."""
    from edgead.data import Color, load_image, scan_category

    cat = scan_category(data)
    return [load_image(s.path, Color(color)) for s in cat.test], np.array([s.label for s in cat.test])


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine this runs several times faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cl() -> SimpleNamespace:
    """The helpers above, for the test modules."""
    return SimpleNamespace(make_task=make_task, train_bundle=train_bundle, raw_scores=raw_scores,
                           test_split=test_split)
