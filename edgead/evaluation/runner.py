"""Run an engine over a dataset's test split and compute the metrics (what the station would see).

Frames are fed one by one at their native size (the graph resizes, as on the station). AUROCs and AUPRO are computed
on the raw scores and raw maps (the normalised ones are clipped at 0 and 1, whose ties would lower them), pixel
metrics at model resolution against :func:`edgead.metrics.mask_at` masks: the one definition the conversion gate and
the benchmarks use. The confusion matrix (escapes, false rejects) is taken at the shipped threshold.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgead.contract.decide import DecisionRules, decide_image, rejected
from edgead.data import Color, Sample, load_image, load_mask, scan_category
from edgead.errors import DataError
from edgead.evaluation.confusion import confusion
from edgead.infer import Backend, open_backend
from edgead.infer.layout import Layout, infer_layout
from edgead.metrics import evaluate, mask_at
from edgead.verdict import Verdict


@dataclass(frozen=True)
class EvalResult:
    """Per-image outputs and the metrics.

    Attributes:
        metrics: ``edgead.metrics.evaluate`` keys (on raw scores and maps) plus ``threshold`` (raw), ``model_hash``,
            ``ms_per_image`` (median), ``ms_p99``, the confusion counts (``true_reject`` ...) of the station's
            verdicts (:func:`edgead.contract.decide.decide` on each image, judged whole) and ``confusion``
            (:func:`edgead.evaluation.confusion.confusion` of those verdicts: escapes and false rejects with bounds,
            overall and per defect type).
        samples: the evaluated samples, in order.
        scores, raw_scores: ``[N]``; maps: ``[N, h, w]`` normalised maps (float16 to save memory);
        raw_maps: ``[N, h, w]`` raw maps (float32), what the pixel metrics read.
        masks: ``[N, h, w]`` ground truth at map resolution (:func:`edgead.metrics.mask_at`).
        (maps, raw_maps and masks are lists of per-image arrays when the bundle's layout gives maps of different
        sizes: tiled or turned parts at native resolution.)
        latencies_ms: per-image inference time.
        verdicts: per-image verdicts (:func:`edgead.contract.decide.decide`, each image judged whole).
    """

    metrics: dict
    samples: tuple[Sample, ...]
    scores: np.ndarray
    raw_scores: np.ndarray
    maps: np.ndarray
    masks: np.ndarray
    latencies_ms: np.ndarray
    verdicts: tuple[Verdict, ...] = ()
    raw_maps: np.ndarray | None = None


def _progress(items, enabled: bool, desc: str):
    from edgead.progress import track

    return track(items, desc, enabled=enabled, unit="img")


def run_on_samples(engine: Backend, samples: Sequence[Sample], color: Color, *, progress: bool = False,
                   rules: DecisionRules = DecisionRules(), layout: Layout = Layout()) -> EvalResult:
    """Infer every sample with ``engine`` (through the bundle's ``layout``) and compute the metrics.

    With a plain layout the maps and masks are ``[N, h, w]`` arrays at model resolution; with a layout that tiles
    or turns, each image's map comes back at its own size and they are lists (:mod:`edgead.infer.layout`).

    Args:
        engine: the backend.
        samples: the labelled images.
        color: the bundle's colour mode.
        progress: show a progress bar.
        rules: the decision rules the verdicts (the confusion counts) are reached with.

    Raises:
        DataError: if ``samples`` is empty.
    """
    if not samples:
        raise DataError("no test images to evaluate", hint="the dataset needs test/good and test/<defect> images")
    n = len(samples)
    scores = np.zeros(n, np.float32)
    raw = np.zeros(n, np.float32)
    maps, raw_maps, masks = [], [], []
    lat = np.zeros(n, np.float64)
    decisions = []
    for i, s in enumerate(_progress(samples, progress, "evaluate")):
        image = load_image(s.path, color)
        t = time.perf_counter()
        pred = infer_layout(engine, image, layout)
        lat[i] = (time.perf_counter() - t) * 1e3
        scores[i], raw[i] = pred.score[0], pred.raw_score[0]
        decisions.append(decide_image(pred, image.shape[:2], rules))
        maps.append(pred.map[0].astype(np.float16))
        raw_maps.append(pred.raw_map[0].astype(np.float32))
        hw = raw_maps[-1].shape
        masks.append(mask_at(load_mask(s, image.shape[:2]), hw) if s.label else np.zeros(hw, bool))
    if len({m.shape for m in raw_maps}) == 1:
        maps, raw_maps, masks = np.stack(maps), np.stack(raw_maps), np.stack(masks)
    labels = np.array([s.label for s in samples], np.int64)
    has_masks = any(m.any() for m in masks)
    metrics = evaluate(labels, raw, masks if has_masks else None, raw_maps if has_masks else None)
    matrix = confusion(labels, rejected(decisions), [s.defect_type for s in samples])
    metrics.update({
        "ms_per_image": float(np.median(lat)), "ms_p99": float(np.percentile(lat, 99)),
        **{k: matrix[k] for k in ("true_reject", "false_reject", "true_accept", "false_accept")},
        "escape_rate": matrix["escapes"]["rate"], "false_reject_rate": matrix["false_rejects"]["rate"],
        "confusion": matrix,
    })
    return EvalResult(metrics, tuple(samples), scores, raw, maps, masks, lat, tuple(d.verdict for d in decisions),
                      raw_maps)


def evaluate_bundle(artifact: str | os.PathLike, data_dir: str | os.PathLike, *, backend: str | None = None,
                    progress: bool = False, report_dir: str | os.PathLike | None = None,
                    rules: DecisionRules = DecisionRules()) -> EvalResult:
    """Evaluate a bundle (or converted bundle) on the test split of ``data_dir``.

    Args:
        artifact: bundle directory or ``.edgead`` archive.
        data_dir: MVTec-layout category with a ``test/`` split.
        backend: force a backend kind (default: from the artifact).
        progress: show a progress bar.
        report_dir: also write ``report.html`` (:func:`edgead.evaluation.report.write_report`) and
            ``metrics.json`` there.
        rules: the decision rules of the confusion counts (default: the threshold alone).

    Returns:
        The :class:`EvalResult`; ``metrics["threshold"]`` is the bundle's raw image threshold.
    """
    from edgead.bundle import load_bundle

    bundle = load_bundle(artifact)
    category = scan_category(data_dir)
    color = bundle.meta.color
    with open_backend(bundle.root, backend) as engine:
        result = run_on_samples(engine, category.test, color, progress=progress, rules=rules,
                                layout=bundle.meta.layout)
    result.metrics["threshold"] = bundle.meta.calibration.image.thr
    result.metrics["model_hash"] = bundle.model_hash
    if report_dir is not None:
        from edgead.evaluation.report import write_report

        write_report(Path(report_dir), result, color, title=f"{bundle.model_type} on {category.name}")
    return result
