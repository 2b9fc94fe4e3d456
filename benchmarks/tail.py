"""Where a station benchmark's tail comes from: the slow parts located by their place in a turn, by turn and in time.

The station benchmark (:mod:`station`) lets the stations and the bare engine take turns of ``block`` parts, each in
a process of its own. A part's place in its turn is its index (0-based, warm-up included) modulo ``block``:
place 0 is the first part after another process ran. A *slow* part is one above the run's p99 (of the same
series): one part in a hundred by definition. If they were spread evenly, every place and every turn would hold
about 1 % of them; the functions below say where they are instead. Pure functions of arrays, no timing.
"""
from __future__ import annotations

import numpy as np

PLACE_BUCKETS = (0, 1, 2, 5, 10, 20, 50)  # lower bounds of the places-in-turn buckets (the last runs to the block)
FROM_PLACES = (0, 1, 2, 5, 10, 20)  # p99 over the parts at or after each place of their turn
GAP_BOUNDS_S = (0.05, 0.5, 2.0, 4.0, 6.0)  # bins of the time between two slow parts of one turn


def places(index: np.ndarray, block: int) -> np.ndarray:
    """Each part's place in its turn: ``index % block`` (index 0-based over the whole run, warm-up included)."""
    return np.asarray(index, np.int64) % int(block)


def _p(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")


def by_place(values: np.ndarray, place: np.ndarray, threshold: float, block: int,
             bounds: tuple[int, ...] = PLACE_BUCKETS) -> list[dict]:
    """Per bucket of places ``[lo, hi)``: parts, p50, and the slow ones (above ``threshold``) as a count and as a
    percentage of the bucket's parts (about 1 % everywhere when ``threshold`` is the p99 and the tail is even)."""
    values, place = np.asarray(values, np.float64), np.asarray(place)
    edges = [b for b in bounds if b < block] + [block]
    out = []
    for lo, hi in zip(edges, edges[1:]):
        v = values[(place >= lo) & (place < hi)]
        slow = int(np.sum(v > threshold))
        out.append({"places": [lo, hi], "n": int(v.size), "p50": _p(v, 50), "slow": slow,
                    "slow_pct": 100.0 * slow / v.size if v.size else float("nan")})
    return out


def p99_from_place(values: np.ndarray, place: np.ndarray, starts: tuple[int, ...] = FROM_PLACES) -> dict:
    """p99 (and p50) over the parts at place ``k`` of their turn or later, for each ``k``: how much of the tail the
    first parts after a switch make."""
    values, place = np.asarray(values, np.float64), np.asarray(place)
    return {str(k): {"n": int(np.sum(place >= k)), "p50": _p(values[place >= k], 50), "p99": _p(values[place >= k], 99)}
            for k in starts}


def slow_per_turn(values: np.ndarray, turn: np.ndarray, threshold: float) -> dict:
    """How the slow parts spread over the turns: the count in each turn (in order), and the share of all slow parts
    held by the worst tenth of the turns (10 % if even; near 100 % if a few turns, a burst of load, hold them)."""
    values, turn = np.asarray(values, np.float64), np.asarray(turn)
    turns = np.unique(turn)
    counts = np.array([int(np.sum(values[turn == t] > threshold)) for t in turns], np.int64)
    total = int(counts.sum())
    worst = np.sort(counts)[::-1][:max(1, int(np.ceil(len(turns) / 10)))]
    return {"counts": counts.tolist(), "worst_tenth_share_pct": 100.0 * int(worst.sum()) / total if total else 0.0}


def slow_gaps(t_s: np.ndarray, turn: np.ndarray, slow: np.ndarray, bounds: tuple[float, ...] = GAP_BOUNDS_S) -> dict:
    """The time between consecutive slow parts of one turn, binned (``bounds`` in s): a periodic stall (a
    checkpoint every 5 s, a collector) piles the gaps into one bin, runs of slow parts into the first.
    Returns ``{"bins": [[lo, hi], ...], "counts": [...], "median_s": float}``."""
    t_s, turn, slow = np.asarray(t_s, np.float64), np.asarray(turn), np.asarray(slow, bool)
    gaps = []
    for t in np.unique(turn[slow]):
        ts = np.sort(t_s[slow & (turn == t)])
        gaps.extend(np.diff(ts).tolist())
    edges = [0.0, *bounds, float("inf")]
    counts = np.histogram(np.asarray(gaps, np.float64), bins=edges)[0].tolist() if gaps else [0] * (len(edges) - 1)
    return {"bins": [[lo, hi] for lo, hi in zip(edges, edges[1:])], "counts": [int(c) for c in counts],
            "median_s": float(np.median(gaps)) if gaps else float("nan")}


def tail_profile(values: np.ndarray, place: np.ndarray, turn: np.ndarray, block: int,
                 t_s: np.ndarray | None = None) -> dict:
    """Where the slow parts of one series are (:func:`by_place`, :func:`p99_from_place`, :func:`slow_per_turn`,
    and :func:`slow_gaps` when each part's time ``t_s`` is known).

    Args:
        values: the per-part times (ms), in part order; NaN (an unanswered part) is left out.
        place: each part's place in its turn (0: the first part after another process ran).
        turn: each part's turn.
        block: parts per turn (re-warm parts included).
        t_s: each part's time stamp in seconds (any origin), or None.
    """
    values = np.asarray(values, np.float64)
    keep = ~np.isnan(values)
    values, place, turn = values[keep], np.asarray(place)[keep], np.asarray(turn)[keep]
    threshold = _p(values, 99)
    out = {"threshold_ms": threshold, "by_place": by_place(values, place, threshold, block),
           "from_place": p99_from_place(values, place), "per_turn": slow_per_turn(values, turn, threshold)}
    if t_s is not None:
        out["gaps"] = slow_gaps(np.asarray(t_s, np.float64)[keep], turn, values > threshold)
    return out


class Turns:
    """Which turn each part of one process was in, its place in that turn, and whether it counts: a turn may open
    with ``rewarm`` parts that are run but not counted (the first parts after another process ran), so that the
    counted parts are those of a process that is already running; they are kept, for a p99 over every part.

    Args:
        capacity: parts at most, re-warm ones included (the arrays are allocated once).
    """

    def __init__(self, capacity: int):
        self.turn = np.full(capacity, -1, np.int64)
        self.place = np.full(capacity, -1, np.int64)
        self.counted = np.zeros(capacity, bool)
        self.n, self.turns = 0, 0

    def add(self, n: int, counted: bool, new_turn: bool) -> range:
        """Note ``n`` parts run now (``new_turn``: the first of a turn); returns their indices."""
        if self.n + n > self.turn.size:
            raise ValueError(f"Turns: {self.n + n} parts is more than the capacity of {self.turn.size}")
        if new_turn:
            self.turns += 1
        first = 0 if new_turn else (int(self.place[self.n - 1]) + 1 if self.n else 0)
        idx = range(self.n, self.n + n)
        self.turn[idx.start:idx.stop] = self.turns - 1
        self.place[idx.start:idx.stop] = np.arange(first, first + n)
        self.counted[idx.start:idx.stop] = counted
        self.n += n
        return idx

    def masks(self, warmup: int) -> tuple[np.ndarray, np.ndarray]:
        """``(measured, every)`` over the parts noted: ``measured`` the counted parts after the first ``warmup``
        counted ones; ``every`` the parts of the same turns, the re-warm parts of those turns included."""
        counted = self.counted[:self.n]
        measured = counted & (np.cumsum(counted) > warmup)
        every = np.zeros(self.n, bool)
        if measured.any():
            first_turn = self.turn[int(np.argmax(measured))]
            every = self.turn[:self.n] >= first_turn
            every &= ~(counted & ~measured)  # a warm-up part sharing the first measured turn stays out
        return measured, every
