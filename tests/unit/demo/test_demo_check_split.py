"""The demo's conversion gate scores a check split large enough to show a lossy candidate's extra escape and false-reject
rates below the gate's default allowances (convert/evidence.py); 20 defective images, as before, could show nothing
below 14 %, and the demo kept a reduced bank that let 2 of 72 defects through."""
from __future__ import annotations

from edgead.convert.evidence import DEFAULT_MAX_EXTRA_ESCAPE_PCT, DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT
from edgead.demo.run import CHECK_DEFECTS, CHECK_GOOD
from edgead.metrics.bounds import clopper_pearson_upper, min_sample_for


def test_the_check_split_can_show_the_default_allowances():
    assert CHECK_DEFECTS >= min_sample_for(DEFAULT_MAX_EXTRA_ESCAPE_PCT / 100) == 59
    assert CHECK_GOOD >= min_sample_for(DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT / 100) == 14
    assert 100 * clopper_pearson_upper(0, 20) > DEFAULT_MAX_EXTRA_ESCAPE_PCT  # the old 20 could not
