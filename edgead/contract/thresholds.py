"""Image and pixel thresholds, and the score normalisation that makes 0.5 the threshold (docs/bundle-format.md).

Methods (:class:`ThresholdMethod`):

* ``frr`` (good images only): the smallest good validation score ``t`` such that the fraction of good scores
  ``>= t`` is at most ``target_frr``. Any threshold in the open gap below ``t`` gives the same validation FRR;
  ``t`` itself is an observed score, so it is exact in float32. With ``n`` good images the finest achievable FRR
  is ``1/n``: when ``target_frr < 1/n`` (or the top scores all tie) the threshold is extrapolated above the
  highest good score by a Gaussian fit of the good scores, ``max(mean + z * std, max + 0.5 * std)`` with
  ``z`` the standard-normal quantile of ``1 - target_frr`` (see :func:`frr_threshold`).
* ``f1`` (good and defective images): the image threshold of :func:`edgead.metrics.f1_max`.
* ``escape`` (labelled defective images): the highest threshold at which at most ``floor(target * n)`` of the ``n``
  defective scores fall below it (are accepted), i.e. the ``k``-th smallest defective score (see
  :func:`escape_threshold`).
* ``manual``: a threshold given by the user (``calibrate(..., image_threshold=...)`` or :func:`adjust`).

Pixel threshold: with ``f1`` and defect masks holding a defective pixel, the pixel F1-optimal threshold;
otherwise the :func:`frr_threshold` rule over all good pixels with ``target_pixel_fpr``.

Normalisation: ``normalised = clip(0.5 * (raw - lo) / (thr - lo), 0, 1)``; ``lo`` is the 1st percentile of the
good scores (or good pixels). When ``lo >= thr`` (e.g. an F1 threshold below most good scores) ``lo`` is moved to
``thr`` minus the spread of the good scores.

Example:
    >>> cal = calibrate(np.linspace(1.0, 2.0, 101), target_frr=0.05)
    >>> cal.image.thr, float(cal.image.apply(np.array([cal.image.thr]))[0])
    (1.96, 0.5)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from edgead.errors import CalibrationError, DataError
from edgead.metrics.image import f1_max
from edgead.metrics.pixel import pixel_f1_max

MIN_GOOD_IMAGES = 3  # FRR and F1 methods; the manual method needs one good image (for ``lo``)
LO_QUANTILE = 0.01
TAIL_MIN_MARGIN_STD = 0.5  # extrapolated thresholds sit at least this many stds above the highest good score
ZERO_SPREAD_REL = 1e-3  # spread used when all good scores are equal: this fraction of |score| (at least 1e-6)


class ThresholdMethod(str, Enum):
    """How the image threshold was chosen (``thresholds.method`` in ``edgead.yaml``)."""

    FRR = "frr"
    F1 = "f1"
    ESCAPE = "escape"
    MANUAL = "manual"


@dataclass(frozen=True)
class Normalisation:
    """Maps raw scores to [0, 1] with the threshold at 0.5: ``clip(0.5 * (raw - lo) / (thr - lo), 0, 1)``.

    Attributes:
        lo: raw value mapped to 0.
        thr: raw threshold, mapped to 0.5.

    Raises:
        CalibrationError: if a value is not finite or ``thr <= lo``.

    Example:
        >>> Normalisation(lo=1.0, thr=3.0).apply(np.array([0.0, 2.0, 3.0, 9.0])).tolist()
        [0.0, 0.25, 0.5, 1.0]
    """

    lo: float
    thr: float

    def __post_init__(self):
        object.__setattr__(self, "lo", float(self.lo))  # plain floats: YAML- and JSON-safe
        object.__setattr__(self, "thr", float(self.thr))
        if not (math.isfinite(self.lo) and math.isfinite(self.thr)) or self.thr <= self.lo:
            raise CalibrationError(f"normalisation needs finite lo < thr; got lo={self.lo}, thr={self.thr}",
                                   hint="choose a threshold above the good scores' low end")

    def apply(self, raw) -> np.ndarray:
        """Normalise raw scores or maps (float32 stays float32, anything else becomes float64)."""
        raw = np.asarray(raw)
        dtype = raw.dtype if raw.dtype in (np.float32, np.float64) else np.float64
        lo, thr = dtype.type(self.lo), dtype.type(self.thr)
        out = raw.astype(dtype, copy=False) - lo
        out *= dtype.type(0.5)
        out /= thr - lo  # in this order, raw == thr gives exactly 0.5
        return np.clip(out, 0.0, 1.0, out=out)

    def to_dict(self) -> dict:
        """``{"lo": ..., "thr": ...}`` as plain floats."""
        return {"lo": self.lo, "thr": self.thr}

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        """Inverse of :meth:`to_dict`."""
        return cls(lo=float(d["lo"]), thr=float(d["thr"]))


@dataclass(frozen=True)
class Calibration:
    """Image (and pixel) normalisation with how it was obtained.

    Attributes:
        image: image-score normalisation.
        pixel: anomaly-map normalisation, None without good maps.
        method: how the image threshold was chosen.
        target_frr: the target false-reject rate (``frr`` method only, else None).
        n_good: good validation images used.
        n_defective: defective validation images used.
        target_escape_rate: the target escape rate (``escape`` method only, else None).
        operating_point: what ``edgead threshold`` measured at this threshold on its ``--data`` (both error rates
            with their bounds, warnings; ``calibration.operating_point``), or None.
        good_quantiles: the raw scores of the good validation images at :data:`QUANTILE_LEVELS`, set by
            :func:`calibrate` (a moved threshold keeps them: the model's good distribution did not change); the
            station's drift alarm compares production scores with them. None in bundles older than them.
    """

    image: Normalisation
    pixel: Normalisation | None
    method: ThresholdMethod
    target_frr: float | None
    n_good: int
    n_defective: int
    target_escape_rate: float | None = None
    operating_point: dict | None = None
    good_quantiles: tuple[float, ...] | None = None

    def to_dict(self) -> dict:
        """The ``thresholds`` and ``normalisation`` sections of ``edgead.yaml`` (the counts are not stored)."""
        pixel = self.pixel
        escape = {} if self.target_escape_rate is None else {"target_escape_rate": self.target_escape_rate}
        point = {} if self.operating_point is None else {"operating_point": dict(self.operating_point)}
        quantiles = {} if self.good_quantiles is None else {
            "good_score_quantiles": {"levels": list(QUANTILE_LEVELS), "raw": [float(q) for q in self.good_quantiles]}}
        return {
            "thresholds": {"image": self.image.thr, "pixel": pixel.thr if pixel else None,
                           "method": self.method.value, "target_frr": self.target_frr, **escape, **point,
                           **quantiles},
            "normalisation": {"image_lo": self.image.lo, "pixel_lo": pixel.lo if pixel else None},
        }

    def norm_constants(self) -> dict[str, float]:
        """The graph's normalisation constants ``{image_lo, image_thr, pixel_lo, pixel_thr}`` (without a pixel
        normalisation: 0 and 1)."""
        pixel = self.pixel
        return {"image_lo": self.image.lo, "image_thr": self.image.thr,
                "pixel_lo": pixel.lo if pixel else 0.0, "pixel_thr": pixel.thr if pixel else 1.0}

    @classmethod
    def from_dict(cls, meta: dict, *, n_good: int = 0, n_defective: int = 0) -> Calibration:
        """Read the ``thresholds`` and ``normalisation`` sections of ``meta`` (other keys are ignored).

        Raises:
            CalibrationError: if a section or key is missing or the values are invalid.
        """
        try:
            t, n = meta["thresholds"], meta["normalisation"]
            pixel = None if t.get("pixel") is None else Normalisation(float(n["pixel_lo"]), float(t["pixel"]))
            target = t.get("target_frr")
            escape = t.get("target_escape_rate")
            point = t.get("operating_point")
            quantiles = _quantiles_from(t.get("good_score_quantiles"))
            return cls(Normalisation(float(n["image_lo"]), float(t["image"])), pixel, ThresholdMethod(t["method"]),
                       None if target is None else float(target), n_good, n_defective,
                       None if escape is None else float(escape), None if point is None else dict(point), quantiles)
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"bad thresholds/normalisation sections: {exc!r}",
                                   hint="see docs/bundle-format.md for the keys") from exc


QUANTILE_LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
"""The levels at which a bundle stores its good validation scores (``thresholds.good_score_quantiles``)."""


def good_quantiles(good: np.ndarray) -> tuple[float, ...]:
    """The raw good scores at :data:`QUANTILE_LEVELS` (linear interpolation)."""
    return tuple(float(q) for q in np.quantile(np.asarray(good, np.float64), QUANTILE_LEVELS))


def _quantiles_from(section) -> tuple[float, ...] | None:
    if section is None:
        return None
    levels, raw = tuple(float(x) for x in section["levels"]), tuple(float(x) for x in section["raw"])
    if levels != QUANTILE_LEVELS or len(raw) != len(levels) or any(b < a for a, b in zip(raw, raw[1:])):
        raise ValueError(f"good_score_quantiles: expected ascending raw scores at levels {QUANTILE_LEVELS}")
    return raw


def normal_quantile(p: float) -> float:
    """Standard-normal quantile by bisection on ``erfc`` (|error| < 1e-12; no scipy on the station)."""
    lo, hi = -40.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _f32_up(x: float) -> float:
    """Smallest float32 value >= x (the graph stores thresholds as float32 initializers)."""
    v = np.float32(x)
    return float(v if v >= x else np.nextafter(v, np.float32(np.inf)))


def _spread(values: np.ndarray) -> float:
    """Sample std of ``values``, or a small scale-aware positive value when they are all equal."""
    std = float(np.std(values, ddof=1, dtype=np.float64)) if values.size > 1 else 0.0
    top = float(np.max(values))
    return std if std > 0 else max(abs(top) * ZERO_SPREAD_REL, 1e-6)


def frr_threshold(values, target: float) -> float:
    """Smallest observed value ``t`` with ``mean(values >= t) <= target``, or an extrapolated one above the max.

    With ``k = floor(target * n)`` allowed rejects, ``t`` is the smallest value above the ``(n - k)``-th smallest.
    When ``k == 0`` (``target < 1/n``) or no value lies above it (ties at the top), ``t = max(mean + z * std,
    max + 0.5 * std)``, ``z = normal_quantile(1 - target)``, std the sample std (or a tiny scale-aware spread
    when all values are equal), rounded up to float32. Linear time (``np.partition``), fine for all good pixels.

    Args:
        values: good scores or good pixel values, finite, at least one.
        target: allowed fraction of values at or above the threshold, in (0, 1).

    Returns:
        The raw threshold.

    Example:
        >>> frr_threshold([1.0, 2.0, 3.0, 4.0], 0.25), frr_threshold([1.0, 2.0, 3.0, 4.0], 0.5)
        (4.0, 3.0)
    """
    values = np.asarray(values).ravel()
    n = values.size
    k = int(math.floor(target * n + 1e-9))
    if k >= 1:
        part = np.partition(values, n - k - 1)
        kept_max = part[n - k - 1]
        above = part[n - k:]
        above = above[above > kept_max]
        if above.size:
            return float(above.min())
    mean = float(np.mean(values, dtype=np.float64))
    spread = _spread(values)
    top = float(np.max(values))
    return _f32_up(max(mean + normal_quantile(1.0 - target) * spread, top + TAIL_MIN_MARGIN_STD * spread))


def escape_threshold(defect_scores, target: float) -> float:
    """The highest threshold at which at most ``floor(target * n)`` defective scores are below it (escape).

    With ``k`` allowed escapes among the ``n`` sorted defective scores, the threshold is the ``(k + 1)``-th smallest:
    every defect at or above it is rejected, and only the ``k`` below it (fewer with ties) escape. Any higher
    threshold would let one more escape; so no good part is rejected needlessly.

    Args:
        defect_scores: raw scores of labelled defective images, at least one.
        target: allowed escape rate, in [0, 1).

    Returns:
        The raw threshold (a defective score, exact in float32).

    Raises:
        CalibrationError: with no defective score or a target outside [0, 1).

    Example:
        >>> escape_threshold([5.0, 1.0, 3.0, 4.0], 0.25), escape_threshold([5.0, 1.0, 3.0, 4.0], 0.0)
        (3.0, 1.0)
    """
    values = np.sort(np.asarray(defect_scores, dtype=np.float64).ravel())
    if values.size == 0:
        raise CalibrationError("the 'escape' threshold method needs labelled defective images",
                               hint="give --data an MVTec category with test/<defect_type>/ images")
    if not 0.0 <= target < 1.0:
        raise CalibrationError(f"target escape rate must be in [0, 1); got {target}", hint="e.g. 0.01 for 1 %")
    k = int(math.floor(target * values.size + 1e-9))
    return float(values[min(k, values.size - 1)])


def _finite(name: str, values, ndim: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != ndim:
        raise CalibrationError(f"{name} must have {ndim} dimension(s); got shape {values.shape}")
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    if values.size and not (np.isfinite(values.min()) and np.isfinite(values.max())):
        raise CalibrationError(f"{name} contain NaN or inf", hint="check the model outputs on the validation set")
    return values


def _normalisation(thr: float, good: np.ndarray) -> Normalisation:
    """``lo`` = 1st percentile of the good values, moved below ``thr`` by their spread when needed."""
    lo = float(np.quantile(good, LO_QUANTILE))
    return Normalisation(lo if lo < thr else thr - _spread(good.ravel()), thr)


def _check_target(name: str, target: float) -> float:
    if not 0.0 < target < 1.0:
        raise CalibrationError(f"{name} must be in (0, 1); got {target}", hint="e.g. 0.01 for 1%")
    return float(target)


def _image_frr(good, defect, target_frr, manual):
    return frr_threshold(good, target_frr)


def _image_f1(good, defect, target_frr, manual):
    labels = np.r_[np.zeros(good.size, np.int64), np.ones(defect.size, np.int64)]
    return f1_max(labels, np.r_[good, defect])[1]


def _image_manual(good, defect, target_frr, manual):
    return float(manual)


_IMAGE_THRESHOLD = {ThresholdMethod.FRR: _image_frr, ThresholdMethod.F1: _image_f1,
                    ThresholdMethod.MANUAL: _image_manual}


def retune(calibration: Calibration, method: ThresholdMethod | str, good_scores, defect_scores=None, *,
           target: float | None = None) -> Calibration:
    """Choose a new image threshold by ``method`` on a labelled set (the pixel normalisation is kept).

    Args:
        calibration: the current calibration.
        method: ``frr`` (``target`` = false-reject rate, good scores), ``escape`` (``target`` = escape rate,
            defective scores) or ``f1`` (both).
        good_scores: raw scores of good images (``lo`` is their 1st percentile).
        defect_scores: raw scores of labelled defective images (``escape`` and ``f1``).
        target: the target rate of ``frr`` and ``escape``.

    Returns:
        A new :class:`Calibration` with ``n_good`` and ``n_defective`` of this set.

    Raises:
        CalibrationError: an unknown or ``manual`` method, a missing target or class, too few good images.
    """
    try:
        method = ThresholdMethod(method)
    except ValueError:
        raise CalibrationError(f"unknown threshold method {method!r}",
                               hint="use frr, escape or f1 (or a manual image_threshold)") from None
    if method is ThresholdMethod.MANUAL:
        raise CalibrationError("retune chooses a threshold; for a given one use adjust(image_threshold=...)")
    good = _finite("good scores", good_scores, 1)
    defect = np.empty(0) if defect_scores is None else _finite("defect scores", defect_scores, 1)
    _check_good(good, method)
    if method is not ThresholdMethod.FRR and defect.size == 0:
        raise CalibrationError(f"the {method.value!r} threshold method needs labelled defective images",
                               hint="give an MVTec category with test/<defect_type>/ images")
    if method is not ThresholdMethod.F1 and target is None:
        raise CalibrationError(f"the {method.value!r} threshold method needs a target rate")
    if method is ThresholdMethod.FRR:
        thr = frr_threshold(good, _check_target("target_frr", target))
    elif method is ThresholdMethod.ESCAPE:
        thr = escape_threshold(defect, target)
    else:
        thr = _image_f1(good, defect, None, None)
    return replace(calibration, image=_normalisation(float(thr), good), method=method,
                   target_frr=target if method is ThresholdMethod.FRR else None,
                   target_escape_rate=target if method is ThresholdMethod.ESCAPE else None,
                   n_good=int(good.size), n_defective=int(defect.size), operating_point=None)


def _method(method, image_threshold, n_defective: int) -> ThresholdMethod:
    if method is None:
        if image_threshold is not None:
            return ThresholdMethod.MANUAL
        return ThresholdMethod.F1 if n_defective else ThresholdMethod.FRR
    try:
        method = ThresholdMethod(method)
    except ValueError:
        raise CalibrationError(f"unknown threshold method {method!r}",
                               hint=f"use one of {[m.value for m in ThresholdMethod]}") from None
    if method is ThresholdMethod.ESCAPE:
        raise CalibrationError("the 'escape' threshold method needs labelled defects with a target rate",
                               hint="use retune(calibration, 'escape', good, defects, target=...)")
    if (method is ThresholdMethod.MANUAL) != (image_threshold is not None):
        raise CalibrationError(f"method {method.value!r} and image_threshold={image_threshold} do not fit together",
                               hint="pass image_threshold exactly when the method is 'manual'")
    return method


def _check_good(good: np.ndarray, method: ThresholdMethod) -> None:
    minimum = 1 if method is ThresholdMethod.MANUAL else MIN_GOOD_IMAGES
    if good.size < minimum:
        raise CalibrationError(
            f"{good.size} good validation image(s); the {method.value!r} threshold method needs at least {minimum}",
            hint="add more good validation images, or pass a manual threshold (image_threshold=...)")


def _pixel(good_maps, defect_maps, defect_masks, method: ThresholdMethod, target_pixel_fpr: float,
           n_good: int, n_defective: int) -> Normalisation | None:
    """Pixel normalisation: F1-optimal with ``f1`` and defective pixels, else the good-pixel FPR rule."""
    if (defect_maps is None) != (defect_masks is None):
        raise CalibrationError("defect maps and defect masks go together; got only one",
                               hint="pass both, or neither")
    if good_maps is None:
        if defect_maps is not None:
            raise CalibrationError("pixel calibration needs the good maps", hint="pass good_maps=...")
        return None
    good = _finite("good maps", good_maps, 3)
    if good.shape[0] != n_good:
        raise CalibrationError(f"{good.shape[0]} good maps for {n_good} good scores", hint="one map per image")
    if defect_masks is not None:
        maps = _finite("defect maps", defect_maps, 3)
        masks = np.asarray(defect_masks) != 0
        if maps.shape != masks.shape or maps.shape[1:] != good.shape[1:] or maps.shape[0] != n_defective:
            raise CalibrationError(f"defect maps {maps.shape} and masks {masks.shape} do not match the "
                                   f"{n_defective} defect scores and good maps {good.shape}",
                                   hint="one map and one mask per defective image, at the good maps' size")
        if method is ThresholdMethod.F1 and masks.any():
            all_masks = np.concatenate([np.zeros(good.shape, bool), masks])
            thr = pixel_f1_max(all_masks, np.concatenate([good, maps.astype(good.dtype, copy=False)]))[1]
            return _normalisation(thr, good)
    return _normalisation(frr_threshold(good, _check_target("target_pixel_fpr", target_pixel_fpr)), good)


def calibrate(good_scores, good_maps=None, defect_scores=None, defect_maps=None, defect_masks=None, *,
              method: ThresholdMethod | str | None = None, target_frr: float = 0.01,
              target_pixel_fpr: float = 0.001, image_threshold: float | None = None) -> Calibration:
    """Fit the image (and pixel) thresholds and normalisations on a validation set.

    Args:
        good_scores: ``[n_good]`` raw image scores of good validation images.
        good_maps: optional ``[n_good, h, w]`` raw anomaly maps of the same images (for the pixel threshold).
        defect_scores: optional ``[n_defective]`` raw scores of defective validation images.
        defect_maps: optional ``[n_defective, h, w]`` raw maps of the defective images.
        defect_masks: optional ``[n_defective, h, w]`` ground truth of the defective images.
        method: ``frr``, ``f1`` or ``manual``; default ``f1`` with defect scores, ``manual`` with
            ``image_threshold``, else ``frr``.
        target_frr: allowed false-reject rate of good images (``frr`` method).
        target_pixel_fpr: allowed fraction of good pixels at or above the pixel threshold.
        image_threshold: the raw image threshold of the ``manual`` method.

    Returns:
        The :class:`Calibration`.

    Raises:
        CalibrationError: too few good images (< 3, or < 1 for ``manual``), NaN/inf inputs, mismatched shapes,
            a target outside (0, 1), ``f1`` without defects, or a method/threshold conflict.

    Example:
        >>> calibrate([1.0, 1.2, 1.1, 1.3], defect_scores=[2.0, 1.25]).image.thr
        1.25
    """
    good = _finite("good scores", good_scores, 1)
    defect = np.empty(0) if defect_scores is None else _finite("defect scores", defect_scores, 1)
    method = _method(method, image_threshold, defect.size)
    _check_good(good, method)
    if method is ThresholdMethod.F1 and defect.size == 0:
        raise CalibrationError("the 'f1' threshold method needs defective validation scores",
                               hint="pass defect_scores=..., or use the 'frr' method")
    if method is ThresholdMethod.FRR:
        target_frr = _check_target("target_frr", target_frr)
    if method is ThresholdMethod.MANUAL and not math.isfinite(image_threshold):
        raise CalibrationError(f"manual image threshold must be finite; got {image_threshold}")
    try:
        thr = _IMAGE_THRESHOLD[method](good, defect, target_frr, image_threshold)
        pixel = _pixel(good_maps, defect_maps, defect_masks, method, target_pixel_fpr, good.size, defect.size)
    except DataError as exc:
        raise CalibrationError(exc.message, hint=exc.hint) from exc
    return Calibration(_normalisation(float(thr), good), pixel, method,
                       target_frr if method is ThresholdMethod.FRR else None, int(good.size), int(defect.size),
                       good_quantiles=good_quantiles(good))


def adjust(calibration: Calibration, image_threshold: float | None = None, target_frr: float | None = None,
           good_scores=None) -> Calibration:
    """Change the image threshold after training (the pixel normalisation is kept).

    Args:
        calibration: the current calibration (e.g. ``bundle.meta.calibration``).
        image_threshold: a new raw threshold (method becomes ``manual``). ``lo`` is recomputed from
            ``good_scores`` when given, else kept (moved below the threshold by the old ``thr - lo`` if needed).
        target_frr: a new target false-reject rate (method becomes ``frr``); needs ``good_scores``.
        good_scores: raw scores of good validation images.

    Returns:
        A new :class:`Calibration`.

    Raises:
        CalibrationError: unless exactly one of ``image_threshold`` and ``target_frr`` is given, or as
            :func:`calibrate` for the scores and target.

    Example:
        >>> cal = calibrate([1.0, 1.2, 1.1, 1.3])
        >>> adjust(cal, image_threshold=1.5).image.thr, adjust(cal, image_threshold=1.5).method.value
        (1.5, 'manual')
    """
    if (image_threshold is None) == (target_frr is None):
        raise CalibrationError("adjust needs exactly one of image_threshold and target_frr",
                               hint="pass a raw threshold, or a target false-reject rate with good_scores")
    good = None if good_scores is None else _finite("good scores", good_scores, 1)
    if image_threshold is not None:
        thr = float(image_threshold)
        if not math.isfinite(thr):
            raise CalibrationError(f"image threshold must be finite; got {image_threshold}")
        if good is not None:
            _check_good(good, ThresholdMethod.MANUAL)
            image = _normalisation(thr, good)
        else:
            old = calibration.image
            image = Normalisation(old.lo if old.lo < thr else thr - (old.thr - old.lo), thr)
        n_good = calibration.n_good if good is None else int(good.size)
        return replace(calibration, image=image, method=ThresholdMethod.MANUAL, target_frr=None, n_good=n_good,
                       target_escape_rate=None, operating_point=None)
    if good is None:
        raise CalibrationError("a new target_frr needs the good validation scores",
                               hint="pass good_scores=..., or a raw image_threshold instead")
    _check_good(good, ThresholdMethod.FRR)
    target = _check_target("target_frr", target_frr)
    image = _normalisation(frr_threshold(good, target), good)
    return replace(calibration, image=image, method=ThresholdMethod.FRR, target_frr=target, n_good=int(good.size),
                   target_escape_rate=None, operating_point=None)
