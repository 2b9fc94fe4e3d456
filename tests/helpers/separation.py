"""How well a trained model separates defects from good parts, asserted as a property with a margin.

Trained-model tests must not depend on one machine's floats: BLAS/oneDNN kernels differ between CPUs (AVX2,
AVX-512, AMX) and library versions. Each test asserts a bound that its measured spread clears by a margin, and the
failure message shows the AUROC and the gap, so a near miss is visible as such.

Measure the spread with ``EDGEAD_SEPARATION_LOG=FILE``: every call appends one JSON line (test, AUROC, gap, the
kernel settings in the environment). scripts/kernel_margins.sh runs the trained-model tests under several kernel
settings and summarises that file.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

KERNEL_ENV = ("OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


@dataclass(frozen=True)
class Separation:
    """AUROC (ties count one half) and gap = min(defect) - max(good), in the scores' own units."""

    auroc: float
    gap: float
    n_good: int
    n_bad: int


def separation(good, bad) -> Separation:
    """Separation of two score arrays (lists, numpy arrays or CPU tensors)."""
    g = np.asarray(good, np.float64).ravel()
    b = np.asarray(bad, np.float64).ravel()
    pairs = (b[:, None] > g[None, :]).sum() + 0.5 * (b[:, None] == g[None, :]).sum()
    return Separation(float(pairs / (g.size * b.size)), float(b.min() - g.max()), int(g.size), int(b.size))


def record(name: str, **values) -> None:
    """Append one measurement to ``$EDGEAD_SEPARATION_LOG`` (no-op when unset)."""
    path = os.environ.get("EDGEAD_SEPARATION_LOG")
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    row = {"test": test, "name": name, **values, "env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ}}
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def assert_separates(good, bad, *, min_auroc: float, name: str = "image score") -> Separation:
    """Assert AUROC(good < bad) >= ``min_auroc``; the message names the AUROC and the gap.

    Args:
        good, bad: scores of good and defective parts.
        min_auroc: the bound (keep it below the lowest measured value by a margin; say which in a comment).
        name: what is scored, for the message and the log.

    Returns:
        The :class:`Separation`, for further asserts.
    """
    sep = separation(good, bad)
    record(name, **asdict(sep))
    assert sep.auroc >= min_auroc, (f"{name}: AUROC {sep.auroc:.3f} < {min_auroc} (gap min(defect) - max(good) = "
                                    f"{sep.gap:.4g}; {sep.n_good} good, {sep.n_bad} defective)")
    return sep


def assert_metric_at_least(name: str, value: float, bound: float) -> None:
    """A computed metric (e.g. an evaluation's image AUROC) is at least ``bound``; recorded like the others."""
    record(name, value=float(value))
    assert value >= bound, f"{name} = {value:.4f} < {bound}"
