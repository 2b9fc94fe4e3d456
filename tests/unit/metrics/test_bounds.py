"""Clopper-Pearson bounds: closed forms, an independent implementation (scipy's beta quantiles), sample sizes."""
from __future__ import annotations

import math

import pytest

from edgead.errors import DataError
from edgead.metrics.bounds import (binomial_cdf, clopper_pearson_lower, clopper_pearson_upper, min_sample_for,
                                   rate_summary)


def test_zero_errors_has_the_closed_form():
    # (1 - p)^n = alpha  <=>  p = 1 - alpha^(1/n); "rule of three": about 3/n at 95 %
    for n in (3, 20, 300):
        assert clopper_pearson_upper(0, n) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-12)
    assert clopper_pearson_upper(0, 300) == pytest.approx(3 / 300, rel=0.01)


@pytest.mark.parametrize("k, n", [(1, 10), (7, 48), (3, 3), (0, 1), (15, 285), (99, 100)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_matches_the_beta_quantile(k, n, confidence):
    beta = pytest.importorskip("scipy.stats").beta
    want_upper = 1.0 if k == n else beta.ppf(confidence, k + 1, n - k)
    want_lower = 0.0 if k == 0 else beta.ppf(1 - confidence, k, n - k + 1)
    assert clopper_pearson_upper(k, n, confidence) == pytest.approx(want_upper, rel=1e-6, abs=1e-12)
    assert clopper_pearson_lower(k, n, confidence) == pytest.approx(want_lower, rel=1e-6, abs=1e-12)


def test_the_bound_is_where_seeing_k_or_fewer_has_probability_alpha():
    upper = clopper_pearson_upper(7, 48)
    assert 7 / 48 < upper < 1
    assert binomial_cdf(7, 48, upper) == pytest.approx(0.05, abs=1e-9)
    assert binomial_cdf(7, 48, 7 / 48) > 0.05  # the point estimate itself is well inside


def test_more_images_tighten_the_bound():
    bounds = [clopper_pearson_upper(n // 10, n) for n in (10, 100, 1000)]
    assert bounds[0] > bounds[1] > bounds[2] > 0.1


def test_min_sample_for_a_target():
    assert min_sample_for(0.01) == 299
    assert min_sample_for(0.001) == 2995
    n = min_sample_for(0.05, 0.99)
    assert clopper_pearson_upper(0, n, 0.99) <= 0.05 < clopper_pearson_upper(0, n - 1, 0.99)


def test_summary_and_bad_inputs():
    s = rate_summary(7, 48)
    assert s["count"] == 7 and s["n"] == 48 and math.isclose(s["rate"], 7 / 48) and s["bound"].endswith("Pearson")
    assert rate_summary(0, 0)["rate"] is None and rate_summary(0, 0)["upper"] == 1.0
    with pytest.raises(DataError):
        clopper_pearson_upper(5, 3)
    with pytest.raises(DataError):
        clopper_pearson_upper(1, 3, confidence=1.0)
    with pytest.raises(DataError):
        min_sample_for(0.0)
