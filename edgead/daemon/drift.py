"""Drift alarms: the station's inputs and scores against what the model was calibrated on, over a rolling window.

Four signals, each over the last ``drift.window_parts`` parts (judged only once ``drift.min_parts`` are in):

* ``score``: the median raw score of the *accepted* parts, as a rank among the good validation scores the bundle
  stores (``thresholds.good_score_quantiles``; 0.5 = the calibration median). Above ``drift.score_rank_max`` the
  good parts look less like the training parts than they did: lighting, fixture, material or camera changed.
* ``brightness`` and ``contrast``: the mean and the standard deviation of the grey level of the judged (aligned)
  image, relative to the reference image's: past ``drift.brightness_change_max`` / ``drift.contrast_change_max``.
* ``alignment``: the median alignment quality below ``drift.align_quality_min``.

An alarm is a metric (``edgead_drift_alarm{signal}`` 1, ``edgead_drift_value{signal}``), a warning in the log
(and an info line when it clears), the ``drift`` section of ``/healthz``, and a call of every listener
(:meth:`DriftMonitor.subscribe`, e.g. an MQTT or OPC UA event). It never changes a verdict, nor the station's
readiness: a drifting station still judges every part by its threshold (and a watchdog restart would not help).
The work runs after the part's answer; it costs a strided mean and standard deviation of the image and a median
per part.
"""
from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from edgead.errors import ConfigError
from edgead.verdict import Verdict

log = logging.getLogger(__name__)
STRIDE = 4  # every 4th pixel in each direction: the statistics of a 256x320 image from 5 120 pixels


class DriftSignal(str, Enum):
    """What the station watches for drift."""

    SCORE = "score"
    BRIGHTNESS = "brightness"
    CONTRAST = "contrast"
    ALIGNMENT = "alignment"


@dataclass(frozen=True)
class DriftConfig:
    """``drift``: rolling-window drift alarms (they never change a verdict).

    Attributes:
        window_parts: the rolling window, in parts (0 turns drift tracking off).
        min_parts: parts in the window before a signal is judged (fewer: no alarm, value still shown).
        score_rank_max: alarm when the window's median raw score of accepted parts ranks above this among the
            bundle's good validation scores (0.5 is their median; needs a bundle with ``good_score_quantiles``).
        brightness_change_max: alarm when the mean grey level differs from the reference image's by more than
            this fraction.
        contrast_change_max: alarm when the grey level's standard deviation differs from the reference's by more
            than this fraction.
        align_quality_min: alarm when the window's median alignment quality is below this (with a reference).
    """

    window_parts: int = 200
    min_parts: int = 50
    score_rank_max: float = 0.9
    brightness_change_max: float = 0.15
    contrast_change_max: float = 0.25
    align_quality_min: float = 0.8

    def __post_init__(self) -> None:
        if not 0 <= self.window_parts <= 100_000:
            raise ConfigError(f"drift.window_parts: {self.window_parts} is outside 0..100000")
        if self.window_parts and not 1 <= self.min_parts <= self.window_parts:
            raise ConfigError(f"drift.min_parts: {self.min_parts} is outside 1..drift.window_parts")
        if not 0.5 < self.score_rank_max < 1:
            raise ConfigError(f"drift.score_rank_max: {self.score_rank_max} is outside (0.5, 1)")
        for key in ("brightness_change_max", "contrast_change_max"):
            if not 0 < getattr(self, key) <= 10:
                raise ConfigError(f"drift.{key}: {getattr(self, key)} is outside (0, 10]")
        if not 0 <= self.align_quality_min <= 1:
            raise ConfigError(f"drift.align_quality_min: {self.align_quality_min} is outside 0..1")


@dataclass(frozen=True)
class DriftEvent:
    """A signal went into alarm (``alarm`` True) or out of it, judged over ``parts`` parts (0: a reset, see
    :meth:`DriftMonitor.retire`)."""

    signal: DriftSignal
    alarm: bool
    value: float
    bound: float
    message: str
    parts: int = 0


def image_stats(image: np.ndarray) -> tuple[float, float]:
    """(mean, standard deviation) of the grey level of a uint8 ``HxW`` or ``HxWxC`` image, on a strided grid."""
    sub = np.asarray(image)[::STRIDE, ::STRIDE]
    grey = sub.mean(axis=2) if sub.ndim == 3 else sub
    return float(grey.mean()), float(grey.std())


def score_rank(raw: float, quantiles: tuple[float, ...], levels: tuple[float, ...]) -> float:
    """Where ``raw`` falls among the calibration scores: the level, interpolated between stored quantiles (0 below
    the lowest, 1 above the highest)."""
    if raw < quantiles[0]:
        return 0.0
    if raw > quantiles[-1]:
        return 1.0
    return float(np.interp(raw, quantiles, levels))


class DriftMonitor:
    """The rolling windows, the four signals, and their alarms (see the module docstring).

    Args:
        cfg: the ``drift`` section.
        good_quantiles: the bundle's good-score quantiles (None: no score signal).
        reference: the reference image (None: no brightness/contrast/alignment signals).
        metrics: the station's :class:`~edgead.observe.metrics.StationMetrics` (None: no metrics).
    """

    def __init__(self, cfg: DriftConfig, good_quantiles: tuple[float, ...] | None, reference: np.ndarray | None,
                 metrics=None):
        from edgead.contract.thresholds import QUANTILE_LEVELS

        self.cfg = cfg
        self.quantiles, self.levels = good_quantiles, QUANTILE_LEVELS
        self.baseline = image_stats(reference) if reference is not None else None
        self.metrics = metrics
        n = max(1, cfg.window_parts)
        self.scores: collections.deque[float] = collections.deque(maxlen=n)
        self.brightness: collections.deque[float] = collections.deque(maxlen=n)
        self.contrast: collections.deque[float] = collections.deque(maxlen=n)
        self.quality: collections.deque[float] = collections.deque(maxlen=n)
        self.values: dict[DriftSignal, float | None] = {s: None for s in DriftSignal}
        self.alarms: dict[DriftSignal, DriftEvent] = {}
        self.listeners: list[Callable[[DriftEvent], None]] = []
        if good_quantiles is None and cfg.window_parts:
            log.info("drift: the bundle stores no good-score quantiles (trained before they were); the score signal "
                     "is off until it is retrained or updated")
        self._publish()

    @property
    def enabled(self) -> bool:
        return self.cfg.window_parts > 0

    def subscribe(self, listener: Callable[[DriftEvent], None]) -> None:
        """Call ``listener(event)`` whenever a signal goes into or out of alarm (on the loop's thread, after the
        part's answer: it must not block)."""
        self.listeners.append(listener)

    def observe(self, verdict: Verdict, raw_score: float | None, quality: float | None,
                image: np.ndarray | None) -> None:
        """Add one answered part, then judge the signals."""
        if not self.enabled or verdict is Verdict.FAULT:
            return
        if verdict is Verdict.ACCEPT and raw_score is not None and np.isfinite(raw_score):
            self.scores.append(float(raw_score))
        if quality is not None:
            self.quality.append(float(quality))
        if image is not None and self.baseline is not None and verdict is not Verdict.NO_READ:
            mean, std = image_stats(image)
            self.brightness.append(mean)
            self.contrast.append(std)
        self._judge()

    def _judge(self) -> None:
        c = self.cfg
        checks = []
        if self.quantiles is not None and self.scores:
            rank = score_rank(float(np.median(self.scores)), self.quantiles, self.levels)
            checks.append((DriftSignal.SCORE, rank, c.score_rank_max, rank > c.score_rank_max, len(self.scores),
                           f"median raw score of accepted parts ranks {rank:.2f} among the calibration's good scores "
                           f"(bound {c.score_rank_max})"))
        if self.baseline is not None and self.brightness:
            (b0, s0) = self.baseline
            db = float(np.mean(self.brightness)) / max(b0, 1e-6) - 1
            dc = float(np.mean(self.contrast)) / max(s0, 1e-6) - 1
            checks.append((DriftSignal.BRIGHTNESS, db, c.brightness_change_max, abs(db) > c.brightness_change_max,
                           len(self.brightness), f"mean brightness {100 * db:+.1f} % against the reference "
                           f"(bound ±{100 * c.brightness_change_max:.0f} %)"))
            checks.append((DriftSignal.CONTRAST, dc, c.contrast_change_max, abs(dc) > c.contrast_change_max,
                           len(self.contrast), f"contrast {100 * dc:+.1f} % against the reference "
                           f"(bound ±{100 * c.contrast_change_max:.0f} %)"))
        if self.quality:
            q = float(np.median(self.quality))
            checks.append((DriftSignal.ALIGNMENT, q, c.align_quality_min, q < c.align_quality_min, len(self.quality),
                           f"median alignment quality {q:.3f} (bound {c.align_quality_min})"))
        for signal, value, bound, out, n, message in checks:
            self.values[signal] = value
            alarm = out and n >= c.min_parts
            was = signal in self.alarms
            if alarm and not was:
                event = DriftEvent(signal, True, value, bound, f"drift alarm ({signal.value}): {message} over the "
                                                              f"last {n} parts", n)
                self.alarms[signal] = event
                log.warning("%s; verdicts are unchanged, check lighting, camera and fixture", event.message)
                self._tell(event)
            elif was and not alarm and n >= c.min_parts:
                del self.alarms[signal]
                event = DriftEvent(signal, False, value, bound, f"drift cleared ({signal.value}): {message}", n)
                log.info("%s", event.message)
                self._tell(event)
        self._publish()

    def retire(self, reason: str) -> None:
        """This monitor is replaced (a reload, another recipe) or the station stops: every alarm in force clears
        (its listeners hear so), since the windows it was judged over end here."""
        for signal in [s for s in DriftSignal if s in self.alarms]:
            raised = self.alarms.pop(signal)
            value = self.values[signal] if self.values[signal] is not None else raised.value
            event = DriftEvent(signal, False, value, raised.bound, f"drift cleared ({signal.value}): {reason}")
            log.info("%s", event.message)
            self._tell(event)
        self._publish()

    def _tell(self, event: DriftEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 -- a listener never stops the loop
                log.exception("drift listener failed on %s", event.signal.value)

    def _publish(self) -> None:
        if self.metrics is not None:
            self.metrics.set_drift(self.state())

    def state(self) -> dict:
        """The ``drift`` section of ``/healthz``: the signals in alarm, each signal's value, the window."""
        return {
            "alarms": [s.value for s in DriftSignal if s in self.alarms],
            "values": {s.value: (None if v is None else round(v, 4)) for s, v in self.values.items()},
            "messages": [self.alarms[s].message for s in DriftSignal if s in self.alarms],
            "parts": max(len(self.scores), len(self.quality), len(self.brightness)),
            "window_parts": self.cfg.window_parts,
        }
