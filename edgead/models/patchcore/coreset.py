"""Greedy k-center coreset selection (PatchCore, Sec. 3.2), fast on CPU.

The selection runs on a Gaussian random projection of the features (Johnson-Lindenstrauss, ~128 dims) and keeps
each point's squared distance to the chosen set. On the CPU the points are cut into blocks of a few thousand rows
that each keep an upper bound of their largest distance; a new centre is only queued, and a block applies its queued
centres (one matrix product, cache-sized, instead of one memory-bound matrix-vector product over all points per
centre) when its bound leads the search for the farthest point. Distances only fall as centres are added, so a
block whose bound is the largest after it applied every centre holds the farthest point: the same selection as the
plain loop, ties to the lowest index. On a GPU each centre updates all points at once, restricted by the triangle
inequality to the points it can be closer to. The nearest-neighbour table of the selected bank is computed in
chunks.
"""
from __future__ import annotations

import contextlib

import torch

from edgead.errors import ConfigError

_SLACK = 1.0 + 1e-3  # keeps points whose bound is within float rounding of the test
_GATHER_BELOW = 0.3  # below this fraction of candidate points, gather them; above, update all
_BLOCK_ROWS = 2048  # CPU: points per block (2048 x 128 float32 = 1 MiB, about an L2 cache)
_CENTRE_CHUNK = 512  # CPU: queued centres applied per matrix product (bounds its memory: block x chunk floats)


def random_projection(features: torch.Tensor, dim: int, seed: int) -> torch.Tensor:
    """Project ``[P, D]`` features to ``[P, dim]`` with a seeded Gaussian matrix (identity if ``D <= dim``)."""
    if dim <= 0 or features.shape[1] <= dim:
        return features
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(features.shape[1], dim, generator=generator, dtype=features.dtype) / dim**0.5
    return features @ matrix.to(features.device)


def greedy_coreset(
    features: torch.Tensor, count: int, *, projection_dim: int = 128, seed: int = 0, progress: bool = True,
    preselected: int = 0,
) -> torch.Tensor:
    """Select ``count`` rows by greedy k-center (farthest-point) selection.

    Args:
        features: ``[P, D]`` float32 patch features.
        count: rows to select (``1 <= count <= P``).
        projection_dim: random-projection size used for the selection (``<= 0``: none).
        seed: seed of the projection and of the first centre.
        progress: show a progress bar (:mod:`edgead.progress`).
        preselected: the first ``preselected`` rows are the first centres, in order (an existing memory bank that
            a continual update extends, ``edgead.continual``); the selection goes on from them.

    Returns:
        ``[count]`` int64 indices into ``features``, in selection order (``0..preselected-1`` first).

    Raises:
        ConfigError: if ``count`` or ``preselected`` is out of range.

    Example:
        >>> idx = greedy_coreset(torch.randn(1000, 64), 100, progress=False)
        >>> idx.shape
        torch.Size([100])
    """
    total = features.shape[0]
    if not 1 <= count <= total:
        raise ConfigError(f"coreset size {count} must be in 1..{total} (the number of training patches)")
    if not 0 <= preselected <= count:
        raise ConfigError(f"{preselected} preselected rows do not fit a coreset of {count}")
    with torch.no_grad(), _one_thread():
        points = random_projection(features.float(), projection_dim, seed).contiguous()
        norms = (points * points).sum(1)
        generator = torch.Generator().manual_seed(seed)
        current = int(torch.randint(total, (1,), generator=generator)) if preselected == 0 else 0
        if points.device.type == "cpu":
            return _select_blocked(points, norms, count, current, preselected, _progress(count, progress))
        device = points.device  # a GPU updates every point per centre (fast there; no host sync per block)
        selected = torch.empty(count, dtype=torch.long, device=device)
        centres = torch.empty(count, points.shape[1], device=device)
        min_dist = torch.full((total,), float("inf"), device=device)  # squared distance to the selected set
        owner = torch.zeros(total, dtype=torch.long, device=device)  # index (in selection order) of that centre
        bar = _progress(count, progress)
        for i in range(count):
            selected[i] = current
            centre = points[current]
            centres[i] = centre
            _update(points, norms, centres[: i + 1], selected[: i + 1], norms[current], min_dist, owner, i)
            current = i + 1 if i + 1 < preselected else int(torch.argmax(min_dist))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    return selected


def _select_blocked(
    points: torch.Tensor, norms: torch.Tensor, count: int, first: int, preselected: int, bar,
    block_rows: int | None = None,
) -> torch.Tensor:
    """Farthest-point selection with lazily updated blocks (the module docstring); the plain loop's selection."""
    block_rows = block_rows or _BLOCK_ROWS
    total, dim = points.shape
    starts = list(range(0, total, block_rows))
    blocks = [points[a : a + block_rows] for a in starts]
    block_norms = [norms[a : a + block_rows] for a in starts]
    min_dist = torch.full((total,), float("inf"))  # squared distance to the centres each block has applied
    dists = [min_dist[a : a + block_rows] for a in starts]  # views
    bound = torch.full((len(starts),), float("inf"))  # per block: >= its largest min_dist
    applied = [0] * len(starts)  # centres each block has applied
    selected = torch.empty(count, dtype=torch.long)
    centres = torch.empty(count, dim)
    centre_norms = torch.empty(count)
    current = first
    for i in range(count):
        selected[i], centres[i], centre_norms[i] = current, points[current], norms[current]
        if bar is not None:
            bar.update(1)
        if i + 1 == count:
            break
        if i + 1 < preselected:
            current = i + 1
            continue
        while True:  # the block with the largest bound, until that block has applied every centre
            b = int(torch.argmax(bound))  # ties: the lowest block, as argmax over all points takes the lowest index
            if applied[b] == i + 1:
                break
            for c in range(applied[b], i + 1, _CENTRE_CHUNK):
                stop = min(c + _CENTRE_CHUNK, i + 1)
                dist = block_norms[b][:, None] - 2.0 * (blocks[b] @ centres[c:stop].T) + centre_norms[None, c:stop]
                torch.minimum(dists[b], dist.min(1).values, out=dists[b])
            applied[b] = i + 1
            bound[b] = dists[b].max()
        current = starts[b] + int(torch.argmax(dists[b]))
    if bar is not None:
        bar.close()
    return selected


def _update(
    points: torch.Tensor,
    norms: torch.Tensor,
    centres: torch.Tensor,
    selected: torch.Tensor,
    centre_norm: torch.Tensor,
    min_dist: torch.Tensor,
    owner: torch.Tensor,
    i: int,
) -> None:
    """Lower the squared distances ``min_dist`` with the new centre ``centres[i]``, skipping the points it cannot
    be closer to.

    Triangle inequality: if ``d(owner(p), c) >= 2 d(p, owner(p))`` then ``d(p, c) >= d(p, owner(p))``; in squares,
    ``gap^2 >= 4 min_dist``. Late centres are close to few points, so most iterations touch a small fraction.
    """
    centre = centres[i]
    if i > 0:  # index_select/index_copy_, not advanced indexing (slower on CPU with threads: docs/benchmarks.md)
        gap = norms.index_select(0, selected[:i]) - 2.0 * torch.mv(centres[:i], centre) + centre_norm
        candidates = torch.nonzero(gap.index_select(0, owner) < 4.0 * _SLACK * min_dist).squeeze(1)
        if candidates.numel() < _GATHER_BELOW * points.shape[0]:
            if candidates.numel():
                rows = points.index_select(0, candidates)
                dist = norms.index_select(0, candidates) - 2.0 * torch.mv(rows, centre) + centre_norm
                closer = dist < min_dist.index_select(0, candidates)
                moved = candidates.masked_select(closer)
                min_dist.index_copy_(0, moved, dist.masked_select(closer))
                owner.index_fill_(0, moved, i)
            return
    dist = norms - 2.0 * torch.mv(points, centre) + centre_norm
    owner.masked_fill_(dist < min_dist, i)
    torch.minimum(min_dist, dist, out=min_dist)


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
    out = torch.empty(total, k, dtype=torch.long, device=bank.device)
    norms = (bank * bank).sum(1)
    with torch.no_grad():
        for start in range(0, total, chunk):
            rows = bank[start : start + chunk]
            dist = (norms[start : start + chunk, None] - 2.0 * rows @ bank.T + norms[None]).clamp_min(0.0)
            own = torch.arange(start, start + rows.shape[0], device=bank.device)
            dist[torch.arange(rows.shape[0], device=bank.device), own] = -1.0  # itself first, even with duplicate rows
            out[start : start + chunk] = dist.topk(k, dim=1, largest=False).indices
    return out


@contextlib.contextmanager
def _one_thread():
    """Run the selection loop on one intra-op thread (its many small ops lose more to thread synchronisation than
    they gain: docs/benchmarks.md); restores the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from edgead.progress import progress

    return progress(total, "coreset", unit="it")
