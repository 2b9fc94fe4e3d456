"""Run an engine over a dataset's test split and compute the metrics (what the station would see).

Frames are fed one by one at their native size (the graph resizes, as on the station). Pixel metrics are computed
at model resolution: masks are resized to (h, w) with area interpolation and thresholded at 0.5.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from edgead.contract.decide import DecisionRules, decide_image, rejected
from edgead.data import Color, Sample, load_image, load_mask, scan_category
from edgead.errors import DataError
from edgead.infer import Backend, open_backend
from edgead.metrics import evaluate
from edgead.verdict import Verdict


@dataclass(frozen=True)
class EvalResult:
    """Per-image outputs and the metrics.

    Attributes:
        metrics: ``edgead.metrics.evaluate`` keys plus ``threshold`` (raw), ``model_hash``, ``ms_per_image``
            (median), ``ms_p99`` and the confusion counts (``true_reject`` ...) of the station's verdicts
            (:func:`edgead.contract.decide.decide` on each image, judged whole).
        samples: the evaluated samples, in order.
        scores, raw_scores: ``[N]``; maps: ``[N, h, w]`` normalised maps (float16 to save memory).
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


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="img", leave=False)


def run_on_samples(engine: Backend, samples: Sequence[Sample], color: Color, *, progress: bool = False,
                   rules: DecisionRules = DecisionRules()) -> EvalResult:
    """Infer every sample with ``engine`` and compute the metrics.

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
    spec = engine.input_spec
    n = len(samples)
    scores = np.zeros(n, np.float32)
    raw = np.zeros(n, np.float32)
    maps = np.zeros((n, spec.height, spec.width), np.float16)
    masks = np.zeros((n, spec.height, spec.width), bool)
    lat = np.zeros(n, np.float64)
    decisions = []
    for i, s in enumerate(_progress(samples, progress, "evaluate")):
        image = load_image(s.path, color)
        t = time.perf_counter()
        pred = engine.infer(image[None])
        lat[i] = (time.perf_counter() - t) * 1e3
        scores[i], raw[i], maps[i] = pred.score[0], pred.raw_score[0], pred.map[0]
        decisions.append(decide_image(pred, image.shape[:2], rules))
        if s.label:
            full = load_mask(s, image.shape[:2]).astype(np.float32)
            masks[i] = cv2.resize(full, (spec.width, spec.height), interpolation=cv2.INTER_AREA) >= 0.5
    labels = np.array([s.label for s in samples], np.int64)
    has_masks = bool(masks.any())
    metrics = evaluate(labels, scores, masks if has_masks else None, maps.astype(np.float32) if has_masks else None)
    reject = rejected(decisions)
    metrics.update({
        "ms_per_image": float(np.median(lat)), "ms_p99": float(np.percentile(lat, 99)),
        "true_reject": int(np.sum(reject & (labels == 1))), "false_reject": int(np.sum(reject & (labels == 0))),
        "true_accept": int(np.sum(~reject & (labels == 0))), "false_accept": int(np.sum(~reject & (labels == 1))),
    })
    return EvalResult(metrics, tuple(samples), scores, raw, maps, masks, lat, tuple(d.verdict for d in decisions))


def evaluate_bundle(artifact: str | os.PathLike, data_dir: str | os.PathLike, *, backend: str | None = None,
                    progress: bool = False, report_dir: str | os.PathLike | None = None,
                    rules: DecisionRules = DecisionRules()) -> EvalResult:
    """Evaluate a bundle (or converted bundle) on the test split of ``data_dir``.

    Args:
        artifact: bundle directory or ``.edgead`` archive.
        data_dir: MVTec-layout category with a ``test/`` split.
        backend: force a backend kind (default: from the artifact).
        progress: show a progress bar.
        report_dir: also write heatmap overlays of the worst cases and a metrics table there.
        rules: the decision rules of the confusion counts (default: the threshold alone).

    Returns:
        The :class:`EvalResult`; ``metrics["threshold"]`` is the bundle's raw image threshold.
    """
    from edgead.bundle import load_bundle

    bundle = load_bundle(artifact)
    category = scan_category(data_dir)
    color = bundle.meta.color
    with open_backend(bundle.root, backend) as engine:
        result = run_on_samples(engine, category.test, color, progress=progress, rules=rules)
    result.metrics["threshold"] = bundle.meta.calibration.image.thr
    result.metrics["model_hash"] = bundle.model_hash
    if report_dir is not None:
        from edgead.evaluation.report import write_report

        write_report(Path(report_dir), result, color, title=f"{bundle.model_type} on {category.name}")
    return result
