"""Threshold transfer: carry the FP32 bundle's calibrated thresholds over to a converted (FP16/INT8) graph.

Reduced precision adds a noise floor to the features, and every detector here scores a distance (to a memory
bank, a Gaussian, a reconstruction): for a feature error ``e`` independent of the true distance ``d``, the
converted graph reports about ``sqrt(d^2 + |e|^2)``. So raw scores shift by a constant *in squared units*, not by a
constant or a factor: ``cand^2 ~ fp32^2 + c``. Both graphs score the same good calibration images; ``c`` is the
median of ``cand^2 - fp32^2`` (separately for image scores and for map pixels), and every FP32 threshold ``t``
(and ``lo``) becomes ``sqrt(t^2 + c)`` on the candidate. The candidate's normalisation initializers and
``edgead.yaml`` are rewritten, so its normalised outputs (0.5 = threshold) mean the same as the FP32 ones. The
accuracy gate checks the result (accept/reject agreement). Why not a linear fit: docs/benchmarks.md, "Figures
behind code choices".

A channel subset (the ``feat`` recipes) changes the distance itself, not its noise: a squared Mahalanobis distance
over k of d channels is about ``k/d`` of the full one on good parts (chi-square degrees of freedom), so those
candidates use the scale model ``cand^2 ~ a * fp32^2`` (``a``: least squares through the origin in squared
units, so the large scores near the threshold weigh most) instead. One table,
:data:`FITS`, maps :class:`TransferModel` to its fit.

The fit is a median: half the good images score a little below their transferred FP32 score, so a defect that the
FP32 bundle scores just above its threshold can land just below the candidate's. So the candidate's thresholds get
a **guard band** (:class:`GuardBand`): they are lowered by the largest shortfall a good calibration image showed
against its transferred score (image threshold: the largest over the images; pixel threshold: the
:data:`PIXEL_GUARD_QUANTILE` percentile of the sampled pixels), at most :data:`MAX_GUARD_FRACTION` of the gap
between ``lo`` and the threshold. A converted artifact then errs towards reject by its own measured noise, never
towards accept; the gate bounds what that costs in good parts rejected (``convert/gate.py``: new rejects,
agreement). In raw units that shortfall does not grow with the score: for a feature error ``e``,
``cand - fp32 ~ <d/|d|, e> + |e|^2 / 2|d|``, so the good images' shortfall bounds the one at the threshold. The
measurements behind the guard band and its cap: docs/conversion.md ("The cap") and docs/benchmarks.md.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import numpy as np

from edgead.contract.thresholds import Calibration, Normalisation
from edgead.errors import CalibrationError

MIN_IMAGES = 4
PIXELS_PER_IMAGE = 4096
PIXEL_GUARD_QUANTILE = 99.9
"""Percentile of the sampled pixels' shortfall that lowers the pixel threshold (the image one takes the maximum)."""
MAX_GUARD_FRACTION = 0.2
"""The guard band takes at most this fraction of the gap between the candidate's ``lo`` and its threshold; a
candidate whose shortfall is larger keeps the capped guard, and the gate refuses it when its noise turns a defect
into an accept (why a fifth: docs/conversion.md, "The cap")."""


def _like(value, result: np.ndarray):
    """``result`` as a float when ``value`` is a scalar, else as the array."""
    return float(result) if np.ndim(value) == 0 else result


@dataclass(frozen=True)
class Offset:
    """``cand^2 = fp32^2 + c``; ``spread`` is the median absolute deviation of ``cand^2 - fp32^2``."""

    c: float
    spread: float

    def to_candidate(self, fp32_value):
        """The candidate's value for an FP32 value (a float, or an array of them)."""
        v = np.asarray(fp32_value, np.float64)
        return _like(fp32_value, np.sign(v) * np.sqrt(np.maximum(v * v + self.c, 0.0)))


@dataclass(frozen=True)
class Scale:
    """``cand^2 = a * fp32^2``; ``spread`` is the median absolute deviation of ``cand^2 / fp32^2``."""

    a: float
    spread: float

    def to_candidate(self, fp32_value):
        """The candidate's value for an FP32 value (a float, or an array of them)."""
        return _like(fp32_value, np.asarray(fp32_value, np.float64) * float(np.sqrt(max(self.a, 0.0))))


class TransferModel(str, Enum):
    """How a candidate's raw scores relate to the FP32 ones."""

    OFFSET = "offset"  # cand^2 = fp32^2 + c: a precision noise floor (FP16, INT8, bank reduction)
    SCALE = "scale"  # cand^2 = a * fp32^2: fewer channels in a Mahalanobis distance (feature subset)


class GuardBand(str, Enum):
    """How far a candidate's thresholds sit below the transferred FP32 ones."""

    NONE = "none"  # at the transferred value
    SHORTFALL = "shortfall"  # lowered by the largest shortfall of the good calibration images (default)


def shortfall(fit, candidate: np.ndarray, fp32: np.ndarray, percentile: float = 100.0) -> float:
    """How far below their transferred FP32 values the candidate's values fall (raw units, >= 0).

    Args:
        fit: an :class:`Offset` or :class:`Scale`.
        candidate, fp32: the same good images' raw values in both graphs.
        percentile: 100 for the largest shortfall.

    Example:
        >>> shortfall(Offset(0.0, 0.0), np.array([1.0, 1.9, 3.2, 4.0]), np.array([1.0, 2.0, 3.0, 4.0]))
        0.1...
    """
    x, y = _values(candidate, fp32)
    return max(0.0, float(np.percentile(fit.to_candidate(y) - x, percentile)))


def _guarded(threshold: float, lo: float, guard: float) -> tuple[float, float]:
    """(threshold - guard, the guard used): the guard capped at MAX_GUARD_FRACTION of the threshold - lo gap."""
    used = min(guard, MAX_GUARD_FRACTION * max(threshold - lo, 0.0))
    return threshold - used, used


def _values(candidate: np.ndarray, fp32: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(candidate, np.float64).ravel()
    y = np.asarray(fp32, np.float64).ravel()
    if x.size < MIN_IMAGES or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise CalibrationError(f"threshold transfer needs >= {MIN_IMAGES} finite scores, got {x.size}",
                               hint="give --calib a folder of at least 16 good images")
    return x, y


def fit_scale(candidate: np.ndarray, fp32: np.ndarray) -> Scale:
    """Fit the squared-units scale from FP32 raw values to the candidate's (zero FP32 values are left out).

    Raises:
        CalibrationError: too few or non-finite values.
    """
    x, y = _values(candidate, fp32)
    ok = y * y > 1e-12 * max(float(np.max(y * y)), 1e-30)
    ratio = (x[ok] * x[ok]) / (y[ok] * y[ok])
    if ratio.size < MIN_IMAGES:
        raise CalibrationError(f"threshold transfer needs >= {MIN_IMAGES} non-zero FP32 scores, got {ratio.size}")
    # least squares through the origin in squared units: the large scores (near the threshold) weigh most, so a
    # few near-constant images (seen in real calibration sets, scoring ~5 in both graphs) cannot pull it to 1.
    x2, y2 = x[ok] * x[ok], y[ok] * y[ok]
    a = float(np.sum(x2 * y2) / np.sum(y2 * y2))
    return Scale(a, float(np.median(np.abs(ratio - a))))


def fit_offset(candidate: np.ndarray, fp32: np.ndarray) -> Offset:
    """Fit the squared-units offset from FP32 raw values to the candidate's.

    Raises:
        CalibrationError: too few or non-finite values.
    """
    x, y = _values(candidate, fp32)
    diff = x * x - y * y
    c = float(np.median(diff))
    return Offset(c, float(np.median(np.abs(diff - c))))


FITS = {TransferModel.OFFSET: (fit_offset, "cand^2 = fp32^2 + c"),
        TransferModel.SCALE: (fit_scale, "cand^2 = a * fp32^2")}
"""TransferModel -> (fit function, the model as written in ``conversion.threshold_transfer``)."""


def transfer_thresholds(calibration: Calibration, fp32_pred, cand_pred, seed: int = 0,
                        model: TransferModel = TransferModel.OFFSET,
                        guard: GuardBand = GuardBand.SHORTFALL) -> tuple[Calibration, dict]:
    """The candidate's thresholds and normalisation, and a record of the fit.

    Args:
        calibration: the FP32 bundle's thresholds and normalisation.
        fp32_pred, cand_pred: ``Prediction`` of both graphs on the same good calibration images.
        seed: seed of the pixel sample.
        model: how candidate and FP32 raw values relate (:data:`FITS`).
        guard: whether the thresholds get the guard band (module docstring).

    Returns:
        (the candidate's calibration, details for ``conversion.threshold_transfer``).

    Raises:
        CalibrationError: too few or non-finite scores.
    """
    fit, formula = FITS[TransferModel(model)]
    img = fit(cand_pred.raw_score, fp32_pred.raw_score)
    rng = np.random.default_rng(seed)
    flat_ref = fp32_pred.raw_map.reshape(len(fp32_pred.raw_map), -1)
    flat_cand = cand_pred.raw_map.reshape(len(cand_pred.raw_map), -1)
    idx = rng.choice(flat_ref.shape[1], size=min(PIXELS_PER_IMAGE, flat_ref.shape[1]), replace=False)
    pix = fit(flat_cand[:, idx], flat_ref[:, idx])
    guard = GuardBand(guard)
    on = guard is GuardBand.SHORTFALL
    g_img = shortfall(img, cand_pred.raw_score, fp32_pred.raw_score) if on else 0.0
    g_pix = shortfall(pix, flat_cand[:, idx], flat_ref[:, idx], PIXEL_GUARD_QUANTILE) if on else 0.0
    image, g_img = _moved(calibration.image, img, g_img)
    pixel = None
    if calibration.pixel is not None:
        pixel, g_pix = _moved(calibration.pixel, pix, g_pix)
    details = {"model": formula, "image": vars(img), "pixel": vars(pix),
               "n_images": int(len(fp32_pred.raw_score)),
               "guard_band": {"kind": guard.value, "image": g_img, "pixel": g_pix if pixel is not None else None}}
    # the drift alarm's baseline moves with the scores: a candidate's good parts would otherwise rank above every
    # FP32 good score and raise the alarm on a healthy line (no guard band: it is a distribution, not a decision)
    quantiles = None if calibration.good_quantiles is None else tuple(
        float(img.to_candidate(q)) for q in calibration.good_quantiles)
    return replace(calibration, image=image, pixel=pixel, good_quantiles=quantiles), details


def _moved(norm: Normalisation, fit, guard: float) -> tuple[Normalisation, float]:
    """``norm`` in the candidate's raw units, its threshold lowered by the (capped) guard; (result, guard used)."""
    lo = fit.to_candidate(norm.lo)
    thr, used = _guarded(fit.to_candidate(norm.thr), lo, guard)
    below = thr * (1 - 1e-6) if thr > 0 else thr - max(abs(thr) * 1e-6, 1e-12)
    return Normalisation(min(lo, below), thr), used


def apply_to_graph(onnx_path: Path, calibration: Calibration) -> None:
    """Rewrite the candidate graph's normalisation initializers in place."""
    from edgead.convert.onnx_edit import set_normalisation

    set_normalisation(onnx_path, calibration, onnx_path)
