"""The shadow model: a candidate bundle judges the same aligned frames as the live one, after the PLC's answer.

Its verdicts go into the ``shadow`` table beside the live ones (with the next part's commit, like an image path),
so ``edgead records --compare`` and the operator page can say what the candidate would have done on production
parts before it is deployed (promoting it is a deploy of that bundle). It never touches the live verdict.

It runs on a thread of its own, at a lower CPU priority (``shadow.nice`` added to the thread's niceness on Linux),
on ``shadow.intra_op_threads`` ONNX Runtime threads, and within a CPU budget: when it is still busy with an earlier
part, or its inference time over the last ``shadow.budget_window_s`` exceeds ``shadow.cpu_budget_pct`` of that
window, the part is skipped and counted (``edgead_shadow_parts_total{outcome}``): it never queues work for later and
never delays the next trigger. :meth:`ShadowRunner.submit` costs one copy of the aligned image.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from edgead.errors import ConfigError
from edgead.verdict import Verdict

log = logging.getLogger(__name__)


class ShadowOutcome(str, Enum):
    """What happened to a part offered to the shadow model."""

    SCORED = "scored"
    SKIPPED_BUSY = "skipped_busy"  # still judging an earlier part
    SKIPPED_BUDGET = "skipped_budget"  # over its CPU budget
    ERROR = "error"  # its engine failed on the part (recorded as a fault verdict of the shadow)


@dataclass(frozen=True)
class ShadowConfig:
    """``shadow``: a candidate bundle that judges production parts after the answer (``bundle: null``: none).

    Attributes:
        bundle: the candidate bundle (directory or ``.edgead``), for the same camera, reference and ROIs.
        cpu_budget_pct: the most inference time it may use, in percent of one core's wall time over
            ``budget_window_s``; beyond it, parts are skipped (and counted).
        budget_window_s: the window of the budget.
        intra_op_threads: ONNX Runtime threads of the shadow engine.
        nice: added to the shadow thread's niceness (Linux), so the live loop wins the CPU.
    """

    bundle: Path | None = None
    cpu_budget_pct: float = 25.0
    budget_window_s: float = 10.0
    intra_op_threads: int = 1
    nice: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.cpu_budget_pct <= 100:
            raise ConfigError(f"shadow.cpu_budget_pct: {self.cpu_budget_pct} is outside (0, 100]")
        if not 0.5 <= self.budget_window_s <= 3600:
            raise ConfigError(f"shadow.budget_window_s: {self.budget_window_s} is outside 0.5..3600")
        if not 1 <= self.intra_op_threads <= 64:
            raise ConfigError(f"shadow.intra_op_threads: {self.intra_op_threads} is outside 1..64")
        if not 0 <= self.nice <= 19:
            raise ConfigError(f"shadow.nice: {self.nice} is outside 0..19")


class ShadowRunner:
    """The shadow engine on its thread (see the module docstring).

    Args:
        cfg: the station config (its ``shadow`` section names the bundle; camera, reference, ROIs and the decision
            rule are the live station's).
        metrics: the station's metrics (None: none).
        admission: what ``check`` admitted for the shadow bundle (None: admitted here).
    """

    def __init__(self, cfg, metrics=None, admission=None):
        from edgead.daemon.model import load_model

        sh = cfg.shadow
        model_cfg = dataclasses.replace(cfg.model, bundle=sh.bundle, engine=None, backend=None,
                                        intra_op_threads=sh.intra_op_threads, warmup_runs=1)
        self.model = load_model(dataclasses.replace(cfg, model=model_cfg), admission)
        self.cfg, self.decision, self.metrics = sh, cfg.decision, metrics
        self.model_hash = self.model.model_hash
        self.counts = {o: 0 for o in ShadowOutcome}
        self._busy_log: collections.deque[tuple[float, float]] = collections.deque()  # (end, seconds) per part
        self._job: tuple[int, np.ndarray] | None = None
        self._wake = threading.Condition()
        self._done: collections.deque = collections.deque()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="edgead-shadow", daemon=True)
        self._thread.start()
        log.info("shadow model %s loaded (budget %.0f %% of a core over %.0f s)", self.model_hash[:12],
                 sh.cpu_budget_pct, sh.budget_window_s)

    def _count(self, outcome: ShadowOutcome) -> None:
        self.counts[outcome] += 1
        if self.metrics is not None:
            self.metrics.shadow_parts.labels(outcome.value).inc()

    def busy_fraction(self, now: float | None = None) -> float:
        """Share of the budget window the shadow spent inferring."""
        now = time.monotonic() if now is None else now
        horizon = now - self.cfg.budget_window_s
        while self._busy_log and self._busy_log[0][0] < horizon:
            self._busy_log.popleft()
        return sum(s for _, s in self._busy_log) / self.cfg.budget_window_s

    def submit(self, row_id: int, image: np.ndarray) -> ShadowOutcome | None:
        """Offer a part (its committed row and aligned image); never blocks.

        Returns:
            The skip reason, or None when the part was handed to the shadow thread.
        """
        with self._wake:
            if self._job is not None:
                self._count(ShadowOutcome.SKIPPED_BUSY)
                return ShadowOutcome.SKIPPED_BUSY
            if self.busy_fraction() * 100 >= self.cfg.cpu_budget_pct:
                self._count(ShadowOutcome.SKIPPED_BUDGET)
                return ShadowOutcome.SKIPPED_BUDGET
            self._job = (row_id, np.array(image, copy=True))
            self._wake.notify()
        return None

    def results(self) -> list:
        """The shadow verdicts finished since the last call (:class:`~edgead.records.labels.ShadowRow`)."""
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def _run(self) -> None:
        from edgead.contract.decide import decide
        from edgead.records.labels import ShadowRow

        if self.cfg.nice and hasattr(os, "setpriority"):
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                               os.getpriority(os.PRIO_PROCESS, 0) + self.cfg.nice)
            except OSError as exc:
                log.warning("shadow: cannot lower the thread's priority: %s", exc)
        while True:
            with self._wake:
                while self._job is None and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                row_id, image = self._job
            t0 = time.monotonic()
            try:
                decision = decide(self.model.infer_rois(image), self.decision)
                row = ShadowRow(row_id, self.model_hash, decision.verdict, decision.score, decision.raw_score,
                                (time.monotonic() - t0) * 1000)
                outcome = ShadowOutcome.SCORED
            except Exception as exc:  # noqa: BLE001 -- the candidate's failure is its own fault verdict
                row = ShadowRow(row_id, self.model_hash, Verdict.FAULT, None, None, (time.monotonic() - t0) * 1000,
                                error=f"{type(exc).__name__}: {exc}")
                outcome = ShadowOutcome.ERROR
            end = time.monotonic()
            with self._wake:
                self._busy_log.append((end, end - t0))
                self._done.append(row)
                self._count(outcome)
                self._job = None

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until the part in hand is judged (tests, and a clean stop)."""
        deadline = time.monotonic() + timeout_s
        while self._job is not None and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._job is None

    def close(self) -> None:
        """Finish the part in hand, stop the thread, close the engine (idempotent)."""
        if self._thread.is_alive():
            self.wait_idle(10.0)
            with self._wake:
                self._stop = True
                self._wake.notify()
            self._thread.join(timeout=10.0)
        self.model.close()
