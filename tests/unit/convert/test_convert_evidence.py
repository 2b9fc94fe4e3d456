"""The gate bounds what its check set cannot see (convert/evidence.py): a lossy candidate with no new escape on a
small sample is refused until the sample can show its extra escape rate below the allowance; a defect's score may
not fall towards the threshold; the report says so with the numbers and what to do. Scores are constructed."""
import numpy as np
import pytest

from edgead.contract.graph import Prediction
from edgead.convert.candidates import Job
from edgead.convert.evidence import evidence
from edgead.convert.gate import compare
from edgead.convert.pipeline import Built, ConvertOptions, choose
from edgead.convert.report import Candidate, ConversionReport
from edgead.convert.targets import Precision, get_target
from edgead.errors import ConfigError, GateError


def _pred(scores) -> Prediction:
    """Normalised scores as given (0.5 = threshold), raw = 2x normalised; one-pixel maps below the threshold."""
    s = np.asarray(scores, np.float32)
    maps = np.zeros((len(s), 4, 4), np.float32)
    return Prediction(score=s, map=maps, raw_score=2 * s, raw_map=maps)


def _sample(n_good: int, n_bad: int):
    """FP32 accepts every good image (0.2) and rejects every defect (1.0, clipped): labels and reference."""
    labels = np.r_[np.zeros(n_good, int), np.ones(n_bad, int)]
    return labels, _pred([0.2] * n_good + [1.0] * n_bad)


def test_no_new_escape_on_a_small_sample_is_not_enough_for_a_lossy_candidate():
    """20 defects FP32 rejects, none accepted by the candidate: the extra escape rate is only shown below 14 % (95 %,
    1 - 0.05^(1/20)), above the 5 % allowance, so the candidate is refused; with 60 defects (bound 4.9 %) it passes,
    and an exact rewrite passes on the small sample (float rounding only)."""
    labels, ref = _sample(20, 20)
    cand = _pred([0.21] * 20 + [1.0] * 20)
    rep = compare(labels, ref, cand)
    assert (rep.new_accepts, rep.new_rejects) == (0, 0) and not rep.passed
    e = rep.evidence
    assert (e.defects_caught, e.extra_escapes, e.escape_shown, e.false_reject_shown) == (20, 0, False, True)
    assert rep.reasons == [
        "extra escape rate not shown below the 5 % allowance: 0 of 20 defective images FP32 rejects accepted by the "
        "candidate, upper bound 14 % (95 % confidence, one-sided Clopper-Pearson); to show it, check on at least 59 "
        "defective images FP32 rejects (none accepted), or accept 14 % with --max-extra-escape-pct 14"]
    assert compare(labels, ref, cand, exact=True).passed
    assert compare(labels, ref, cand, max_extra_escape_pct=14.0).passed  # the allowance accepted
    labels, ref = _sample(20, 60)
    rep = compare(labels, ref, _pred([0.21] * 20 + [1.0] * 60))
    assert rep.passed and rep.evidence.escape_shown, rep.reasons


def test_the_false_reject_side_is_bounded_too():
    """1 of 20 good images FP32 accepts rejected (5 %, within the 10 % point rule) bounds the extra false-reject
    rate at 21.7 %, above the 20 % allowance."""
    labels, ref = _sample(20, 60)
    rep = compare(labels, ref, _pred([0.2] * 19 + [0.6] + [1.0] * 60))
    assert rep.new_rejects == 1 and not rep.passed
    assert len(rep.reasons) == 1 and rep.reasons[0].startswith(
        "extra false-reject rate not shown below the 20 % allowance: 1 of 20 good images FP32 accepts rejected by "
        "the candidate, upper bound 21.7 %")
    assert "to show it" not in rep.reasons[0]  # one was seen: more images alone would not show it


def test_a_defect_whose_score_falls_towards_the_threshold_is_refused():
    """A clear defect (1.0) that the candidate still rejects at 0.85 shows a fall of 0.15 > 0.1: a defect FP32 scores
    below 0.65 could be accepted. Falls within the tolerance, and rises, pass."""
    labels, ref = _sample(20, 60)
    scores = [0.2] * 20 + [1.0] * 59
    rep = compare(labels, ref, _pred(scores + [0.85]))
    assert rep.new_accepts == 0 and not rep.passed and rep.evidence.defects_over_fall == 1
    assert rep.reasons == ["1 defect(s) FP32 rejects scored up to 0.150 lower than on FP32 (normalised score, 0.5 = "
                           "threshold; tolerance 0.1, --max-defect-score-fall): a defect FP32 scores below 0.65 "
                           "could be accepted"]
    assert compare(labels, ref, _pred(scores + [0.85]), max_defect_score_fall=0.2).passed
    assert compare(labels, ref, _pred(scores + [0.95])).passed
    e = evidence(labels, np.r_[np.zeros(20, bool), np.ones(60, bool)], np.r_[np.zeros(20, bool), np.ones(60, bool)],
                 ref.score, _pred([0.1] * 20 + [1.0] * 60).score)
    assert e.defect_fall_max == 0.0 and e.margin_kept  # good images falling is no defect's margin


def _built(name: str, precision: Precision, latency_ms: float, gate, lossy: bool) -> Built:
    from edgead.convert.recipes import Recipe

    recipe = Recipe(name, precision, bank_keep=0.25) if lossy else None
    job = Job(name, precision, recipe)
    return Built(job, None, {}, Candidate(name, precision.value, 1024, latency_ms, latency_ms, gate=gate))


def test_auto_keeps_fp32_over_a_faster_candidate_the_sample_cannot_clear_and_the_report_says_why():
    labels, ref = _sample(20, 20)
    fast = compare(labels, ref, _pred([0.2] * 20 + [1.0] * 20))  # no new escape, 20 defects: bound 14 %
    exact = compare(labels, ref, ref, exact=True)
    built = [_built("fp32", Precision.FP32, 90.0, exact, lossy=False),
             _built("fp32+opt+bank25", Precision.FP32, 30.0, fast, lossy=True)]
    assert built[1].job.lossy and not built[0].job.lossy
    chosen = choose(built, Precision.AUTO, False, get_target("x86-cpu"))
    assert chosen.job.name == "fp32"
    report = ConversionReport("b", "h" * 64, "x86-cpu", "onnxruntime", "auto", "fp32", "out",
                              [b.candidate for b in built], "none", None).to_markdown()
    assert "| 0 of 20 -> at most 14 % | 0 of 20 -> at most 14 % | +0.000 |" in report  # the lossy row
    assert "| exact | exact | +0.000 | pass |" in report  # the FP32 row
    assert ("- `fp32+opt+bank25`: extra escape rate not shown below the 5 % allowance: 0 of 20 defective images "
            "FP32 rejects accepted by the candidate, upper bound 14 %") in report
    assert "check on at least 59 defective images FP32 rejects (none accepted), or accept 14 %" in report
    with pytest.raises(GateError, match="extra escape rate not shown below the 5 % allowance"):
        choose(built[1:], Precision.INT8, False, get_target("x86-cpu"))  # a requested lossy candidate: refused


@pytest.mark.parametrize("kw, match", [({"confidence": 1.0}, "confidence"),
                                       ({"max_extra_escape_pct": 0.0}, "max_extra_escape_pct"),
                                       ({"max_extra_false_reject_pct": 150.0}, "max_extra_false_reject_pct"),
                                       ({"max_defect_score_fall": -0.1}, "max_defect_score_fall")])
def test_evidence_options_are_validated(kw, match):
    with pytest.raises(ConfigError, match=match):
        ConvertOptions(**kw)
