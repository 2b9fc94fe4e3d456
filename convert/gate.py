"""The accuracy gate: a converted artifact must score a labelled set like the FP32 bundle does.

Both image and pixel AUROC are gated (INT8 can keep image AUROC and ruin the maps), and what the check set cannot
show is bounded (:mod:`edgead.convert.evidence`: the extra escape and false-reject rates' confidence bounds against
their allowances, and the defects' score margin). The pure part, :func:`compare`, works on arrays; :func:`run_gate`
is the thin runner over two backends and an MVTec-layout folder.

Example:
    >>> report = compare(labels, ref, cand, tolerance_pt=0.5)        # doctest: +SKIP
    >>> enforce(report, force=False)                                   # raises GateError when it failed
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from edgead.contract.decide import decide_batch, rejected
from edgead.contract.graph import Prediction
from edgead.convert.evidence import (DEFAULT_MAX_DEFECT_SCORE_FALL, DEFAULT_MAX_EXTRA_ESCAPE_PCT,
                                     DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT, Evidence, evidence)
from edgead.errors import DataError, GateError
from edgead.infer.base import Backend
from edgead.infer.layout import Layout, infer_images
from edgead.infer.layout import map_hw as map_hw_of
from edgead.metrics import image_auroc, mask_at, pixel_auroc
from edgead.metrics.bounds import DEFAULT_CONFIDENCE

DEFAULT_TOLERANCE_PT = 0.5
"""Largest image-AUROC drop allowed, in points (0.5 = 0.005 AUROC)."""
DEFAULT_PIXEL_TOLERANCE_PT = 1.0
"""Largest pixel-AUROC drop allowed, in points."""
DEFAULT_MIN_AGREEMENT = 0.9
"""The smallest accept/reject agreement of a converted artifact with its FP32 bundle on the check set."""
DEFAULT_MAX_NEW_REJECT_PCT = 10.0
"""The largest share (percent) of the check set's good images that FP32 accepts and a candidate may reject: the
guard band (convert/transfer.py) trades accepts for rejects, and this bounds the trade; the agreement alone does
not when the check set holds few good images."""


@dataclass(frozen=True)
class CheckSet:
    """A labelled evaluation set: images ``[N,H,W,C]`` uint8 (one size, else a list), labels ``[N]``, masks at the
    resolution of the maps the bundle's ``layout`` gives (``[N,h,w]`` bool, a list where sizes differ, or None)."""

    images: np.ndarray | list
    labels: np.ndarray
    masks: np.ndarray | list | None
    layout: Layout = Layout()


@dataclass
class GateReport:
    """The numbers of one comparison (JSON-friendly; AUROCs in [0, 1], deltas in points, candidate - reference);
    ``evidence``: what the sample shows beyond itself (:class:`~edgead.convert.evidence.Evidence`: the confidence
    bounds on the extra escape and false-reject rates against their allowances, the largest defect score fall)."""

    image_auroc_ref: float
    image_auroc: float
    image_auroc_delta_pt: float
    pixel_auroc_ref: float | None
    pixel_auroc: float | None
    pixel_auroc_delta_pt: float | None
    score_drift_max: float
    score_drift_p99: float
    agreement: float
    tolerance_pt: float
    pixel_tolerance_pt: float
    passed: bool
    reasons: list[str] = field(default_factory=list)
    new_accepts: int = 0
    new_rejects: int = 0
    size_bytes: int | None = None
    latency_median_ms: float | None = None
    latency_p99_ms: float | None = None
    evidence: Evidence | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        pix = "n/a" if self.pixel_auroc is None else \
            f"{100 * self.pixel_auroc:.2f} ({self.pixel_auroc_delta_pt:+.2f} pt)"
        return (f"image AUROC {100 * self.image_auroc:.2f} ({self.image_auroc_delta_pt:+.2f} pt), pixel AUROC {pix}, "
                f"score drift max {self.score_drift_max:.4f} / p99 {self.score_drift_p99:.4f}, "
                f"agreement {100 * self.agreement:.1f}%, new accepts {self.new_accepts} / new rejects "
                f"{self.new_rejects}" + ("" if self.evidence is None else self._evidence_summary()))

    def _evidence_summary(self) -> str:
        e = self.evidence
        return (f", extra escapes {e.bound_text('escape')}, extra false rejects {e.bound_text('false_reject')} "
                f"({100 * e.confidence:.0f} % bounds), largest defect score fall {e.fall_text()}")


def compare(labels: np.ndarray, ref: Prediction, cand: Prediction, *, masks: np.ndarray | list | None = None,
            tolerance_pt: float = DEFAULT_TOLERANCE_PT,
            pixel_tolerance_pt: float = DEFAULT_PIXEL_TOLERANCE_PT, min_agreement: float | None = None,
            max_new_accepts: int = 0, max_new_reject_pct: float = DEFAULT_MAX_NEW_REJECT_PCT, exact: bool = False,
            confidence: float = DEFAULT_CONFIDENCE,
            max_extra_escape_pct: float = DEFAULT_MAX_EXTRA_ESCAPE_PCT,
            max_extra_false_reject_pct: float = DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT,
            max_defect_score_fall: float = DEFAULT_MAX_DEFECT_SCORE_FALL) -> GateReport:
    """Compare candidate outputs with the FP32 reference on the same labelled images (pure).

    AUROCs are computed on the raw outputs (the normalised ones saturate at 0 and 1); drift on the normalised
    score; accept/reject agreement on the verdicts of :func:`edgead.contract.decide.decide` (each image judged
    whole, default rules).

    Args:
        labels: ``[N]`` 0 good, 1 defective.
        ref: the FP32 bundle's outputs.
        cand: the converted artifact's outputs.
        masks: ``[N, h, w]`` bool at map resolution (a list of per-image masks where a tiled layout's maps differ
            in size), or None (no pixel gate).
        tolerance_pt: the largest image-AUROC drop allowed (points).
        pixel_tolerance_pt: the largest pixel-AUROC drop allowed (points).
        min_agreement: the smallest accept/reject agreement with the reference (default ``DEFAULT_MIN_AGREEMENT``).
        max_new_accepts: defective images the reference rejects that the candidate may accept (default 0: a
            conversion never turns a caught defect into an accept).
        max_new_reject_pct: the largest share of good images (percent) FP32 accepts that the candidate may reject.
        exact: the candidate is an exact rewrite of the FP32 graph (float rounding only): the confidence bounds do
            not apply to it.
        confidence: of the bounds on the extra escape and false-reject rates.
        max_extra_escape_pct, max_extra_false_reject_pct: the allowances the bounds must be below (percent).
        max_defect_score_fall: the largest fall of a defect's normalised score below FP32's.

    Returns:
        The :class:`GateReport` (``passed`` False with ``reasons`` when a check fails).
    """
    labels = np.asarray(labels)
    ia_ref, ia = image_auroc(labels, ref.raw_score), image_auroc(labels, cand.raw_score)
    pa_ref = pa = None
    if masks is not None and any(np.any(m) for m in masks):
        pa_ref, pa = pixel_auroc(masks, ref.raw_map), pixel_auroc(masks, cand.raw_map)
    drift = np.abs(np.asarray(cand.score, np.float64) - np.asarray(ref.score, np.float64))
    ref_rejects, cand_rejects = (rejected(decide_batch(p, [np.shape(m) for m in p.map])) for p in (ref, cand))
    agree = float(np.mean(cand_rejects == ref_rejects))
    d_img = 100.0 * (ia - ia_ref)
    d_pix = None if pa is None else 100.0 * (pa - pa_ref)
    min_agreement = DEFAULT_MIN_AGREEMENT if min_agreement is None else min_agreement
    ev = evidence(labels, ref_rejects, cand_rejects, ref.score, cand.score, exact=exact, confidence=confidence,
                  max_extra_escape_pct=max_extra_escape_pct, max_extra_false_reject_pct=max_extra_false_reject_pct,
                  max_defect_score_fall=max_defect_score_fall)
    new_accepts, new_rejects = ev.extra_escapes, ev.extra_false_rejects  # the second: the cost side
    reasons = []
    if new_accepts > max_new_accepts:
        reasons.append(f"{new_accepts} defective image(s) rejected by FP32 are accepted by the candidate "
                       f"(allowed {max_new_accepts})")
    n_good = int(np.sum(labels == 0))
    if n_good and 100.0 * new_rejects / n_good > max_new_reject_pct:
        reasons.append(f"{new_rejects} of {n_good} good image(s) accepted by FP32 are rejected by the candidate "
                       f"({100.0 * new_rejects / n_good:.1f}% > {max_new_reject_pct:g}%)")
    if agree < min_agreement:
        reasons.append(f"accept/reject agreement {100 * agree:.1f}% < {100 * min_agreement:.1f}%")
    if -d_img > tolerance_pt:
        reasons.append(f"image AUROC dropped {-d_img:.2f} pt ({100 * ia_ref:.2f} -> {100 * ia:.2f}), "
                       f"tolerance {tolerance_pt} pt")
    if d_pix is not None and -d_pix > pixel_tolerance_pt:
        reasons.append(f"pixel AUROC dropped {-d_pix:.2f} pt ({100 * pa_ref:.2f} -> {100 * pa:.2f}), "
                       f"tolerance {pixel_tolerance_pt} pt")
    reasons += ev.reasons()
    return GateReport(image_auroc_ref=ia_ref, image_auroc=ia, image_auroc_delta_pt=d_img, pixel_auroc_ref=pa_ref,
                      pixel_auroc=pa, pixel_auroc_delta_pt=d_pix, score_drift_max=float(drift.max()),
                      score_drift_p99=float(np.percentile(drift, 99)), agreement=agree, tolerance_pt=tolerance_pt,
                      pixel_tolerance_pt=pixel_tolerance_pt, passed=not reasons, reasons=reasons,
                      new_accepts=new_accepts, new_rejects=new_rejects, evidence=ev)


def enforce(report: GateReport, *, what: str, force: bool) -> GateReport:
    """Raise :class:`GateError` for a failed report unless ``force``.

    Raises:
        GateError: with the numbers and why.
    """
    if not report.passed and not force:
        raise GateError(f"{what} failed the accuracy gate: {'; '.join(report.reasons)} [{report.summary()}]",
                        hint="use another precision or calibration set, add labelled images to --check, raise "
                             "--tolerance-pt or accept a larger allowance (--max-extra-escape-pct, "
                             "--max-extra-false-reject-pct), or --force")
    return report


def load_check_set(root: str | os.PathLike, *, channels: int, map_hw: tuple[int, int],
                   layout: Layout = Layout()) -> CheckSet:
    """Load an MVTec-layout folder's test split, masks at the resolution of the maps ``layout`` gives
    (:func:`edgead.infer.layout.map_hw` of the model's ``map_hw``; :func:`edgead.metrics.mask_at`, the definition
    ``eval`` uses): a tiled bundle's maps come back at each image's size, as on the station.

    Raises:
        DataError: no test split, or no good or no defective image.
    """
    from edgead.data.images import Color, load_image
    from edgead.data.mvtec import load_mask, scan_category

    cat = scan_category(root)
    if not cat.test:
        raise DataError(f"check set {str(root)!r} has no test split", hint="expected ROOT/test/good and test/<defect>")
    color = Color.GRAY if channels == 1 else Color.RGB
    images, masks = [], []
    for s in cat.test:
        img = load_image(s.path, color)
        images.append(img)
        masks.append(mask_at(load_mask(s, img.shape[:2]), map_hw_of(img.shape[:2], map_hw, layout)))
    labels = np.array([s.label for s in cat.test])
    uniform = all(im.shape == images[0].shape for im in images)
    # Sizes may vary within a category (the graph resizes): then the images stay a list, fed one by one.
    same = len({m.shape for m in masks}) == 1
    return CheckSet(images=np.stack(images) if uniform else images, labels=labels,
                    masks=np.stack(masks) if same else masks, layout=layout)


def predict(backend: Backend, images: np.ndarray | list, batch_size: int = 8, layout: Layout = Layout()
            ) -> Prediction:
    """Run a backend over ``images`` through ``layout``, as eval and the station do
    (:func:`edgead.infer.layout.infer_images`): maps are lists where a tiled layout gives sizes that differ."""
    return infer_images(backend, images, layout, batch_size)


def measure_latency(backend: Backend, image: np.ndarray, runs: int = 30, warmup: int = 3) -> tuple[float, float]:
    """(median, p99) milliseconds of ``backend.infer`` on one ``[1,H,W,C]`` batch (measured, never asserted)."""
    return measure_latencies({"": backend}, image, runs, rounds=1, warmup=warmup)[""]


def measure_latencies(backends: Mapping[str, Backend], image: np.ndarray, runs: int = 30, rounds: int = 6,
                      warmup: int = 3) -> dict[str, tuple[float, float]]:
    """(median, p99) milliseconds of each backend's ``infer`` on one ``[1,H,W,C]`` batch, timed in turns.

    The ``runs`` of each are split into ``rounds``; every round times each backend in turn (the order reversed
    every other round), so that a change of the machine's load during the measurement reaches every candidate
    alike and ``--precision auto`` is not fooled by it (measured, never asserted).
    """
    for backend in backends.values():
        for _ in range(warmup):
            backend.infer(image)
    names = list(backends)
    per_round = max(1, -(-runs // max(1, rounds)))
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(1, rounds)):
        for name in names if r % 2 == 0 else names[::-1]:
            backend, out = backends[name], times[name]
            for _ in range(per_round):
                t0 = time.perf_counter()
                backend.infer(image)
                out.append(1e3 * (time.perf_counter() - t0))
    return {name: (float(np.median(t)), float(np.percentile(t, 99))) for name, t in times.items()}


def run_gate(reference: Backend | Prediction, candidate: Backend, check: CheckSet, *, artifact: Path | None = None,
             tolerance_pt: float = DEFAULT_TOLERANCE_PT, pixel_tolerance_pt: float = DEFAULT_PIXEL_TOLERANCE_PT,
             max_new_reject_pct: float = DEFAULT_MAX_NEW_REJECT_PCT, latency_runs: int = 30, **evidence_kw
             ) -> GateReport:
    """Predict ``check`` with the candidate (and the reference, unless its :class:`Prediction` on ``check`` is given:
    several candidates share one), compare, and add size on disk and candidate latency (not enforced).

    ``evidence_kw``: :func:`compare`'s ``exact``, ``confidence``, ``max_extra_escape_pct``,
    ``max_extra_false_reject_pct`` and ``max_defect_score_fall``."""
    ref = reference if isinstance(reference, Prediction) else predict(reference, check.images, layout=check.layout)
    cand = predict(candidate, check.images, layout=check.layout)
    report = compare(check.labels, ref, cand, masks=check.masks, tolerance_pt=tolerance_pt,
                     pixel_tolerance_pt=pixel_tolerance_pt, max_new_reject_pct=max_new_reject_pct, **evidence_kw)
    if artifact is not None:
        report.size_bytes = Path(artifact).stat().st_size
    if latency_runs:
        first = check.images[0][None] if isinstance(check.images, list) else check.images[:1]
        report.latency_median_ms, report.latency_p99_ms = measure_latency(candidate, first, latency_runs)
    return report
