"""Greedy k-center coreset selection (PatchCore, Sec. 3.2), fast on CPU.

The selection runs on a Gaussian random projection of the features (Johnson-Lindenstrauss, ~128 dims), keeps a
running vector of each point's squared distance to the chosen set, and adds one matrix-vector product per
iteration. The nearest-neighbour table of the selected bank is computed in chunks.
"""
from __future__ import annotations

import torch

from edgead.errors import ConfigError, lazy_import


def random_projection(features: torch.Tensor, dim: int, seed: int) -> torch.Tensor:
    """Project ``[P, D]`` features to ``[P, dim]`` with a seeded Gaussian matrix (identity if ``D <= dim``)."""
    if dim <= 0 or features.shape[1] <= dim:
        return features
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(features.shape[1], dim, generator=generator, dtype=features.dtype) / dim**0.5
    return features @ matrix


def greedy_coreset(
    features: torch.Tensor, count: int, *, projection_dim: int = 128, seed: int = 0, progress: bool = True
) -> torch.Tensor:
    """Select ``count`` rows by greedy k-center (farthest-point) selection.

    Args:
        features: ``[P, D]`` float32 patch features.
        count: rows to select (``1 <= count <= P``).
        projection_dim: random-projection size used for the selection (``<= 0``: none).
        seed: seed of the projection and of the first centre.
        progress: show a tqdm progress bar.

    Returns:
        ``[count]`` int64 indices into ``features``, in selection order.

    Raises:
        ConfigError: if ``count`` is out of range.

    Example:
        >>> idx = greedy_coreset(torch.randn(1000, 64), 100, progress=False)
        >>> idx.shape
        torch.Size([100])
    """
    total = features.shape[0]
    if not 1 <= count <= total:
        raise ConfigError(f"coreset size {count} must be in 1..{total} (the number of training patches)")
    with torch.no_grad():
        points = random_projection(features.float(), projection_dim, seed).contiguous()
        norms = (points * points).sum(1)
        generator = torch.Generator().manual_seed(seed)
        current = int(torch.randint(total, (1,), generator=generator))
        selected = torch.empty(count, dtype=torch.long)
        min_dist = torch.full((total,), float("inf"))
        bar = _progress(count, progress)
        for i in range(count):
            selected[i] = current
            centre = points[current]
            dist = norms - 2.0 * torch.mv(points, centre) + norms[current]
            torch.minimum(min_dist, dist, out=min_dist)
            current = int(torch.argmax(min_dist))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    return selected


def nearest_neighbors(bank: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Indices of each bank row's ``k`` nearest rows (itself first), computed in chunks.

    Args:
        bank: ``[M, D]``.
        k: neighbours per row (``<= M``).
        chunk: rows per distance block (memory ``chunk * M`` floats).

    Returns:
        ``[M, k]`` int64; column 0 is the row itself.

    Raises:
        ConfigError: if ``k > M``.
    """
    total = bank.shape[0]
    if not 1 <= k <= total:
        raise ConfigError(f"num_neighbors={k} must be in 1..{total} (the memory bank size)", hint="lower num_neighbors")
    out = torch.empty(total, k, dtype=torch.long)
    norms = (bank * bank).sum(1)
    with torch.no_grad():
        for start in range(0, total, chunk):
            rows = bank[start : start + chunk]
            dist = (norms[start : start + chunk, None] - 2.0 * rows @ bank.T + norms[None]).clamp_min(0.0)
            own = torch.arange(start, start + rows.shape[0])
            dist[torch.arange(rows.shape[0]), own] = -1.0  # itself first, even with duplicate rows
            out[start : start + chunk] = dist.topk(k, dim=1, largest=False).indices
    return out


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    tqdm = lazy_import("tqdm", feature="the coreset progress bar", extra="train").tqdm
    return tqdm(total=total, desc="coreset", unit="it", mininterval=0.5)
