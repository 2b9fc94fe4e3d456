"""The seeded split of a category's good training images into fit and held-out validation images (numpy only:
the deploy self-test picks its known-good samples from the held-out part without torch)."""
from __future__ import annotations

import numpy as np

from edgead.errors import DataError


def validation_count(n: int, fraction: float) -> int:
    """How many of ``n`` good images are held out for the threshold (at least 2, leaving at least 2 to fit).

    Raises:
        DataError: with fewer than 4 images.
    """
    if n < 4:
        raise DataError(f"only {n} good training images", hint="put at least 4 (better 20+) images in train/good")
    return min(n - 2, max(2, int(round(n * fraction)))) if fraction > 0 else 0


def holdout_split(n: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded split of ``n`` images into sorted ``(fit, validation)`` indices; the same seed gives the same
    split, so a later ``edgead update`` can rebuild a bundle's split from its metadata."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])
