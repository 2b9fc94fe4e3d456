"""Exact (Clopper-Pearson) confidence bounds on an error rate, and the sample a target rate needs.

An error rate measured on a test set (escapes among defective parts, false rejects among good ones) is ``k / n``.
With few parts that ratio says little: 0 escapes of 20 defects is compatible with a true escape rate of 14 %. The
one-sided Clopper-Pearson upper bound is the largest rate ``p`` for which seeing ``k`` or fewer errors in ``n``
still has probability ``alpha`` (``P(X <= k | n, p) = alpha``): "with 95 % confidence the rate is at most ``p``".
It is exact (never below the nominal coverage), computed here from the binomial CDF by bisection, so the station
side needs no scipy.

Example:
    >>> round(clopper_pearson_upper(0, 20), 4)            # 0 escapes of 20 defects
    0.1391
    >>> min_sample_for(0.01)                              # parts needed to show 1 % with 0 errors at 95 %
    299
"""
from __future__ import annotations

import math

from edgead.errors import DataError

DEFAULT_CONFIDENCE = 0.95
BOUND_NAME = "one-sided Clopper-Pearson"


def _check(k: int, n: int, confidence: float) -> None:
    if n < 0 or not 0 <= k <= max(n, 0):
        raise DataError(f"a rate needs 0 <= errors <= n; got {k} errors of {n}")
    if not 0.0 < confidence < 1.0:
        raise DataError(f"confidence must be in (0, 1); got {confidence}", hint="e.g. 0.95")


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)`` (log-space terms, exact to float rounding)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    if k >= n:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    return min(1.0, math.fsum(math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
                                       + (n - i) * log_q) for i in range(k + 1)))


def clopper_pearson_upper(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided upper confidence bound of a rate from ``k`` errors in ``n`` trials.

    Args:
        k: errors seen.
        n: trials (parts); ``0`` gives 1.0 (nothing is known).
        confidence: e.g. 0.95.

    Returns:
        ``p`` in [k/n, 1] with ``P(X <= k | n, p) = 1 - confidence`` (1.0 when ``k == n`` or ``n == 0``).

    Raises:
        DataError: for ``k`` outside ``0..n`` or a confidence outside (0, 1).
    """
    _check(k, n, confidence)
    if n == 0 or k == n:
        return 1.0
    alpha = 1.0 - confidence
    if k == 0:  # closed form: (1 - p)^n = alpha
        return -math.expm1(math.log(alpha) / n)
    lo, hi = k / n, 1.0
    for _ in range(80):  # the CDF falls as p grows
        mid = (lo + hi) / 2
        if binomial_cdf(k, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def clopper_pearson_lower(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided lower confidence bound (``P(X >= k | n, p) = 1 - confidence``); 0.0 when ``k == 0``.

    Raises:
        DataError: as :func:`clopper_pearson_upper`.
    """
    _check(k, n, confidence)
    if n == 0 or k == 0:
        return 0.0
    return 1.0 - clopper_pearson_upper(n - k, n, confidence)


def min_sample_for(target: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest parts that can show a rate at most ``target`` (upper bound <= target with 0 errors).

    Raises:
        DataError: for a target outside (0, 1).
    """
    if not 0.0 < target < 1.0:
        raise DataError(f"target rate must be in (0, 1); got {target}", hint="e.g. 0.01 for 1 %")
    _check(0, 1, confidence)
    return math.ceil(math.log(1.0 - confidence) / math.log1p(-target) - 1e-9)


def rate_summary(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """``{"count", "n", "rate", "upper", "confidence", "bound"}`` of ``k`` errors in ``n`` (rate None when n is 0)."""
    return {"count": int(k), "n": int(n), "rate": (k / n) if n else None,
            "upper": clopper_pearson_upper(k, n, confidence), "confidence": confidence, "bound": BOUND_NAME}


__all__ = ["BOUND_NAME", "DEFAULT_CONFIDENCE", "binomial_cdf", "clopper_pearson_lower", "clopper_pearson_upper",
           "min_sample_for", "rate_summary"]
