"""The self-test samples a release ships: known-good and known-defective images, given by the user or taken from
the bundle's training data (good: the held-out validation split the threshold was calibrated on, never fitted;
defective: the ``test/<defect>/`` images, spread over the defect types).

Example:
    >>> choose_samples(load_bundle("bundle"), SampleOptions())          # doctest: +SKIP
    [(PosixPath('data/train/good/007.png'), <Verdict.ACCEPT: 'accept'>), ...]
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, zip_longest
from pathlib import Path

from edgead.errors import DeployError
from edgead.verdict import Verdict

HINT = ("give --selftest-good IMAGE and --selftest-defective IMAGE (repeatable), or --selftest-data DIR (MVTec "
        "layout with test/<defect>/ images)")


@dataclass(frozen=True)
class SampleOptions:
    """Where the samples come from.

    Attributes:
        good: images that must be accepted.
        defective: images that must be rejected.
        data: an MVTec-layout folder to take the missing kind from (default: the bundle's ``training.data``).
        count: how many of each kind are taken from data.
    """

    good: tuple[str, ...] = ()
    defective: tuple[str, ...] = ()
    data: str | None = None
    count: int = 3


def spread(paths: list[Path], groups: list[str], n: int) -> list[Path]:
    """Up to ``n`` paths, taking one of each group in turn (every defect type before a second of any) (pure)."""
    by_group: dict[str, list[Path]] = {}
    for p, g in zip(paths, groups):
        by_group.setdefault(g, []).append(p)
    rounds = zip_longest(*(by_group[g] for g in sorted(by_group)))
    return [p for p in chain.from_iterable(rounds) if p is not None][:n]


def samples_from_data(data: Path, training, n: int) -> tuple[list[Path], list[Path]]:
    """Good and defective samples from an MVTec-layout folder.

    Good ones are the bundle's held-out validation images when ``data`` is its training data, unchanged (same
    fingerprint); otherwise the ``test/good`` images. ``training`` is the bundle's ``meta.training`` (or None).
    """
    from edgead.data import fingerprint, scan_category
    from edgead.data.split import holdout_split

    category = scan_category(data)
    good: list[Path] = []
    same = training is not None and training.data and Path(training.data).resolve() == data.resolve()
    n_val = (training.n_validation or 0) if training is not None else 0
    if same and n_val and category.train and fingerprint(category.train) == training.data_fingerprint:
        _, val = holdout_split(len(category.train), n_val, training.seed or 0)
        good = [Path(category.train[i].path) for i in val]
    if not good:
        good = [Path(s.path) for s in category.test if s.label == 0]
    bad = [s for s in category.test if s.label == 1]
    return good[:n], spread([Path(s.path) for s in bad], [s.defect_type for s in bad], n)


def choose_samples(bundle, options: SampleOptions) -> list[tuple[Path, Verdict]]:
    """The release's samples: the user's, completed from data where a kind is missing.

    Raises:
        DeployError: a given image does not exist, or no good or no defective sample could be found.
    """
    good = [Path(p) for p in options.good]
    bad = [Path(p) for p in options.defective]
    for p in good + bad:
        if not p.is_file():
            raise DeployError(f"self-test sample {p} does not exist", hint=HINT)
    if not good or not bad:
        training = bundle.meta.training
        data = options.data or (training.data if training is not None else None)
        if data and Path(data).is_dir():
            g, b = samples_from_data(Path(data), training, options.count)
            good, bad = good or g, bad or b
    for kind, found in (("known-good", good), ("known-defective", bad)):
        if not found:
            raise DeployError(f"no {kind} self-test sample: the release must prove it accepts good parts and rejects "
                              "defective ones", hint=HINT)
    return [(p, Verdict.ACCEPT) for p in good] + [(p, Verdict.REJECT) for p in bad]
