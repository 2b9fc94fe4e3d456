"""Conversion-time memory-bank reduction: a further greedy k-center coreset of a PatchCore bank (pure numpy).

At a 10 % coreset the nearest-neighbour search against the bank costs more than the backbone on a CPU; its cost is
linear in the bank size. The greedy k-center selection (the same rule PatchCore trains with) keeps the entries that
cover the bank best, so a patch's nearest kept entry stays close to its nearest original one. Each kept entry's
neighbour list (itself first, for the paper's reweighting) is recomputed within the kept bank. The accuracy gate
decides whether a reduction is kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgead.errors import ConfigError

PROJECTION_DIM = 64
"""Random-projection size used for the selection distances (the selection only, not the kept rows)."""


@dataclass(frozen=True)
class ReducedBank:
    """A reduced bank: ``bank`` ``[M', D]``, ``neighbors`` ``[M', k]`` int64 (or None), ``index`` kept rows."""

    bank: np.ndarray
    neighbors: np.ndarray | None
    index: np.ndarray


def greedy_coreset(points: np.ndarray, n_keep: int, *, seed: int = 0,
                   projection_dim: int = PROJECTION_DIM) -> np.ndarray:
    """Indices of ``n_keep`` rows chosen by greedy k-center selection (on a seeded random projection).

    Args:
        points: ``[M, D]``.
        n_keep: rows to keep (``1 <= n_keep <= M``).
        seed: seed of the projection and of the first centre.
        projection_dim: dimension of the projection (no projection when ``D`` is not larger).

    Returns:
        ``[n_keep]`` int64 row indices, in selection order.

    Raises:
        ConfigError: ``n_keep`` out of range.
    """
    m, d = points.shape
    if not 1 <= n_keep <= m:
        raise ConfigError(f"bank reduction to {n_keep} rows is out of range for a bank of {m}")
    rng = np.random.default_rng(seed)
    x = points.astype(np.float32)
    if d > projection_dim:
        x = x @ (rng.standard_normal((d, projection_dim)).astype(np.float32) / np.sqrt(projection_dim))
    sq = (x * x).sum(1)
    chosen = np.empty(n_keep, np.int64)
    chosen[0] = int(rng.integers(m))
    dist = np.full(m, np.inf, np.float32)
    for i in range(1, n_keep + 1):
        c = chosen[i - 1]
        dist = np.minimum(dist, np.maximum(sq - 2.0 * (x @ x[c]) + sq[c], 0.0))
        if i < n_keep:
            chosen[i] = int(np.argmax(dist))
    return chosen


def nearest_neighbors(bank: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """``[M, k]`` int64: each row's ``k`` nearest rows of ``bank`` (itself first)."""
    b = bank.astype(np.float32)
    sq = (b * b).sum(1)
    out = np.empty((len(b), k), np.int64)
    for s in range(0, len(b), chunk):
        d2 = sq[s:s + chunk, None] - 2.0 * b[s:s + chunk] @ b.T + sq[None]
        d2[np.arange(len(d2)), np.arange(s, s + len(d2))] = -np.inf  # itself first
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d2, part, 1).argsort(1)
        out[s:s + chunk] = np.take_along_axis(part, order, 1)
    return out


def reduce_bank(bank: np.ndarray, keep: float, *, num_neighbors: int | None = None, seed: int = 0) -> ReducedBank:
    """Keep a fraction of the bank by greedy coreset selection, and recompute the neighbour lists.

    Args:
        bank: ``[M, D]`` float32.
        keep: fraction kept, in (0, 1].
        num_neighbors: width of the neighbour table (None: the graph has none).
        seed: selection seed.

    Returns:
        The :class:`ReducedBank`.

    Raises:
        ConfigError: ``keep`` out of range, or fewer kept rows than neighbours.
    """
    if not 0.0 < keep <= 1.0:
        raise ConfigError(f"bank keep fraction {keep} must be in (0, 1]")
    n_keep = max(1, int(round(keep * len(bank))))
    if num_neighbors is not None and n_keep < num_neighbors:
        raise ConfigError(f"a bank of {n_keep} rows cannot hold {num_neighbors} neighbours",
                          hint="keep a larger fraction of the bank")
    index = np.sort(greedy_coreset(bank, n_keep, seed=seed))
    kept = np.ascontiguousarray(bank[index], np.float32)
    nbrs = nearest_neighbors(kept, num_neighbors) if num_neighbors else None
    return ReducedBank(bank=kept, neighbors=nbrs, index=index)
