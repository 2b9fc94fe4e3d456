"""Labelled splits for supervised-vs-unsupervised experiments: move a seeded share of an MVTec category's defective
test images into training.

The split is written as a **folder of symlinks** (never a copy of the data) in the MVTec layout, with the moved
defects in ``train/<defect_type>/``::

    OUT/train/good/*             -> SOURCE/train/good/*            (all of them)
    OUT/train/<type>/*           -> the moved defective test images
    OUT/test/good/*, test/<type>/* -> the rest of SOURCE/test (the reduced test split)
    OUT/ground_truth/<type>/*    -> the masks of every defective image (moved or not)

So ``edgead train --labelled --data OUT`` trains a supervised model, any unsupervised model trained on OUT sees only
``train/good`` (``scan_category`` keeps the defects apart), and every model is evaluated on the same reduced test
split with ``evaluate_bundle(bundle, OUT)``.

Example:
    >>> with labelled_split("datasets/piped_pa_bdp01_tl", 0.05, seed=0) as split:     # doctest: +SKIP
    ...     train(split.root, "b", TrainConfig(model="capsnet", supervision=Supervision.LABELLED))
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from edgead.data.mvtec import GOOD, Sample, scan_category
from edgead.errors import DataError

FRACTIONS = (0.01, 0.05, 0.10)
"""The defect shares of the training set used by the experiments (``benchmarks/capsnet.py``)."""


@dataclass(frozen=True)
class LabelledSplit:
    """A labelled split written by :func:`make_labelled_split`.

    Attributes:
        root: the split folder (MVTec layout, symlinks).
        source: the category it was made from.
        fraction: the requested defect share of the training set.
        seed: the seed of the choice.
        n_train_good: good training images.
        moved: the source paths of the defective test images moved into training.
        test: the source samples of the reduced test split.
    """

    root: Path
    source: Path
    fraction: float
    seed: int
    n_train_good: int
    moved: tuple[Path, ...]
    test: tuple[Sample, ...]

    @property
    def defect_share(self) -> float:
        """The actual share of defects in the training set (rounding; at least one defect)."""
        return len(self.moved) / (len(self.moved) + self.n_train_good)


def defect_count(n_good: int, fraction: float) -> int:
    """Defects to add to ``n_good`` good images so that they are ``fraction`` of the training set (at least 1).

    Example:
        >>> defect_count(32, 0.05), defect_count(667, 0.01)
        (2, 7)
    """
    return max(1, int(round(fraction * n_good / (1.0 - fraction))))


def _choose(defects: list[Sample], n: int, seed: int) -> list[Sample]:
    """``n`` defects, round-robin over the defect types (types and images in a seeded order)."""
    rng = np.random.default_rng(seed)
    by_type: dict[str, list[Sample]] = {}
    for s in defects:
        by_type.setdefault(s.defect_type, []).append(s)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(by_type.items())]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    chosen: list[Sample] = []
    while len(chosen) < n:
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop())
    return chosen


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target.resolve(), link)


def make_labelled_split(source: str | os.PathLike, out_dir: str | os.PathLike, fraction: float,
                        seed: int = 0) -> LabelledSplit:
    """Write a labelled split of ``source`` to ``out_dir`` as symlinks (see the module docstring).

    Args:
        source: an MVTec-layout category with defective test images.
        out_dir: a new or empty folder.
        fraction: share of defects in the resulting training set, in (0, 0.5] (e.g. 0.01, 0.05, 0.10).
        seed: seed of the choice of defects.

    Returns:
        The :class:`LabelledSplit`.

    Raises:
        DataError: if the fraction is out of range, the folder is not empty, or the test split has too few
            defective images to move the needed number and keep at least one for testing.
    """
    if not 0.0 < float(fraction) <= 0.5:
        raise DataError(f"labelled split fraction={fraction} must be in (0, 0.5]", hint="e.g. 0.01, 0.05 or 0.10")
    category = scan_category(source)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"labelled split folder {str(out)!r} is not empty", hint="give a new or empty folder")
    defects = [s for s in category.test if s.label == 1]
    n = defect_count(len(category.train), float(fraction))
    if n >= len(defects):
        raise DataError(f"{str(category.root)!r}: {len(defects)} defective test images cannot give {n} to training "
                        "and keep one for testing", hint="use a smaller fraction or a category with more defects")
    moved = _choose(defects, n, seed)
    moved_paths = {s.path for s in moved}
    for s in category.train:
        _link(s.path, out / "train" / GOOD / s.path.name)
    for s in moved:
        _link(s.path, out / "train" / s.defect_type / s.path.name)
    test = tuple(s for s in category.test if s.path not in moved_paths)
    for s in test:
        _link(s.path, out / "test" / s.defect_type / s.path.name)
    for s in defects:
        if s.mask_path is not None:
            _link(s.mask_path, out / "ground_truth" / s.defect_type / s.mask_path.name)
    return LabelledSplit(root=out, source=category.root, fraction=float(fraction), seed=int(seed),
                         n_train_good=len(category.train), moved=tuple(s.path for s in moved), test=test)


@contextlib.contextmanager
def labelled_split(source: str | os.PathLike, fraction: float, seed: int = 0) -> Iterator[LabelledSplit]:
    """:func:`make_labelled_split` into a temporary folder, removed on exit (the data itself is never touched).

    Args:
        source: an MVTec-layout category.
        fraction: share of defects in the training set.
        seed: seed of the choice.

    Yields:
        The :class:`LabelledSplit`, whose root is named ``<category>``.

    Raises:
        DataError: as :func:`make_labelled_split`.
    """
    with tempfile.TemporaryDirectory(prefix="edgead-labelled-") as tmp:
        yield make_labelled_split(source, Path(tmp) / Path(source).name, fraction, seed)


__all__ = ["FRACTIONS", "LabelledSplit", "defect_count", "labelled_split", "make_labelled_split"]
