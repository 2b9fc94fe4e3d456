"""The station: capture -> align -> infer -> decide -> signal -> record, one part per :meth:`Station.step`.

Resources (engine, camera, PLC link, record store, metrics endpoint) have one owner, this class, and live from
``__enter__`` to ``__exit__``. :meth:`step` is a straight line with a timing per stage. Any error of a part is
answered with the fail-safe verdict and recorded; it never becomes an accept. A lost PLC link or a failing
engine ends the loop (systemd restarts the service); a camera loss or a failed alignment only fails that part.
"""
from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from edgead.camera import EndOfStream, Frame, open_camera
from edgead.daemon.config import SaveImages, StationConfig, TriggerSource, parse_listen
from edgead.contract.decide import RoiDecision, decide
from edgead.daemon.decide import apply_budget
from edgead.daemon.model import LoadedModel, load_model
from edgead.daemon.recorder import Recorder
from edgead.daemon.reload import DEVICES, LOGGING, ORDER, PLC, RECORDER, ReloadPlan, plan_reload
from edgead.errors import AlignmentError, CameraError, EngineError
from edgead.plc import PartResult, Trigger, open_plc
from edgead.records import ImageArchive, ImageFormat, PartRecord, RecordStore
from edgead.stages import ALIGN, CAPTURE, DECIDE, INFER, SIGNAL, TIMINGS, TOTAL
from edgead.verdict import Verdict

log = logging.getLogger(__name__)
COMPONENTS = tuple(c for c in ORDER if c != LOGGING)
"""What the station opens, in order (closed in reverse)."""


@dataclass
class PartOutcome:
    """What happened to one part (handed to ``on_part`` callbacks and kept for the summary)."""

    seq: int
    part_id: str
    verdict: Verdict
    score: float | None
    source: str
    latencies_ms: dict = field(default_factory=dict)
    rois: list[RoiDecision] = field(default_factory=list)
    error: str | None = None


class Station:
    """One inspection station. ``with Station(cfg) as st: st.step()`` inspects one part.

    Args:
        cfg: the validated station config.
        on_part: optional callback called with each :class:`PartOutcome`.
    """

    def __init__(self, cfg: StationConfig, on_part=None):
        self.cfg = cfg
        self.on_part = on_part
        self.seq = 0
        self.last: PartOutcome | None = None
        self.model: LoadedModel | None = None
        self.recorder: Recorder | None = None
        self.metrics_server = None
        self.camera = None
        self.plc = None
        self.metrics = None
        self._closers: dict[str, ExitStack] = {}  # component -> what releases it, one per component
        self._retired = {"written": 0, "images_skipped": 0}  # counts of recorders replaced by a reload
        self._idle_log = RateLimitedLog(log, period_s=60.0)

    # -- lifetime ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "Station":
        from edgead.observe.metrics import State, StationMetrics

        self.metrics = StationMetrics()
        try:
            for name in COMPONENTS:
                self._install(name, *self._open(name, self.cfg))
            self.plc.set_status(ready=True, busy=False, fault=False)
            self.metrics.set_state(State.READY)
        except BaseException:
            self.close()
            raise
        return self

    def _open(self, name: str, cfg: StationConfig):
        """Open component ``name`` for ``cfg``: (the component, the ExitStack that releases it)."""
        stack = ExitStack()
        try:
            value = getattr(self, f"_open_{name}")(cfg, stack)
        except BaseException:
            stack.close()
            raise
        return value, stack

    def _install(self, name: str, value, stack: ExitStack) -> None:
        setattr(self, name, value)
        self._closers[name] = stack

    def _open_model(self, cfg: StationConfig, stack: ExitStack) -> LoadedModel:
        model = load_model(cfg)
        stack.callback(model.close)
        return model

    def _open_recorder(self, cfg: StationConfig, stack: ExitStack) -> Recorder:
        store = stack.enter_context(RecordStore(cfg.storage.database))
        archive = None
        if cfg.storage.save_images is not SaveImages.NONE:
            archive = ImageArchive(cfg.storage.images_dir, cfg.storage.quota_mb,
                                   fmt=ImageFormat(cfg.storage.image_format))
        return stack.enter_context(Recorder(store, archive, cfg.runtime.record_queue, cfg.runtime.image_queue))

    def _open_metrics_server(self, cfg: StationConfig, stack: ExitStack):
        if not cfg.observe.metrics_listen:
            return None
        from edgead.observe.http import MetricsServer

        host, port = parse_listen(cfg.observe.metrics_listen)
        return stack.enter_context(MetricsServer(self.metrics, host, port))

    def _open_camera(self, cfg: StationConfig, stack: ExitStack):
        return stack.enter_context(open_camera(cfg.camera.url, cfg.camera.options()))

    def _open_plc(self, cfg: StationConfig, stack: ExitStack):
        return stack.enter_context(open_plc(cfg.plc.url, cfg.plc))

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drain the recorder, drive the PLC outputs fail-safe, release everything (idempotent)."""
        with ExitStack() as all_components:  # every one is released even if another fails; in reverse order
            for name in COMPONENTS:
                if name in self._closers:
                    all_components.push(self._closers.pop(name))

    def reload(self, cfg: StationConfig) -> ReloadPlan:
        """Apply a new config between two parts: rebuild every component whose keys changed (the model always).

        Components that can run beside the old ones (model, recorder, metrics endpoint) are built first; devices
        (camera, PLC link) are closed, then opened with the new config. If anything fails, the station keeps (or
        gets back) the old components and config, and the error is raised.

        Args:
            cfg: the new, validated config.

        Returns:
            The :class:`~edgead.daemon.reload.ReloadPlan` that was applied.

        Raises:
            ReloadRefused: a changed key cannot change while the station runs (nothing was changed).
            EdgeadError: a new component failed to open (nothing was changed), or a device could neither be
                reopened with the new config nor with the old one.
        """
        plan = plan_reload(self.cfg, cfg)
        built: dict[str, tuple] = {}
        try:
            for name in plan.components:
                if name not in DEVICES and name != LOGGING:
                    built[name] = self._open(name, cfg)
            self._reopen_devices(plan.devices, cfg)
        except BaseException:
            for _, stack in built.values():
                stack.close()
            raise
        for name, (value, stack) in built.items():
            old_value, old = getattr(self, name), self._closers.pop(name, None)
            self._install(name, value, stack)
            if old is not None:
                old.close()
            if name == RECORDER and old_value is not None:  # drained by its close: its counts are final
                self._retired["written"] += old_value.written
                self._retired["images_skipped"] += old_value.images_skipped
        self.cfg = cfg
        return plan

    @property
    def records_written(self) -> int:
        """Records written since the station opened (over every recorder a reload replaced)."""
        return self._retired["written"] + (self.recorder.written if self.recorder else 0)

    @property
    def images_skipped(self) -> int:
        """Images not archived because the image queue was full, since the station opened."""
        return self._retired["images_skipped"] + (self.recorder.images_skipped if self.recorder else 0)

    def _reopen_devices(self, names: tuple[str, ...], cfg: StationConfig) -> None:
        """Close each device and open it with ``cfg``; on a failure, reopen them all with the running config."""
        done = []
        try:
            for name in names:
                self._closers.pop(name).close()
                done.append(name)
                self._install(name, *self._open(name, cfg))
        except BaseException:
            for name in done:
                if name in self._closers:
                    self._closers.pop(name).close()
                self._install(name, *self._open(name, self.cfg))  # raises if the old one is gone too
            raise
        finally:
            if PLC in done and PLC in self._closers:
                self.plc.set_status(ready=True, busy=False, fault=False)

    # -- the loop body ----------------------------------------------------------------------------------------
    def step(self) -> PartOutcome | None:
        """Inspect one part: wait for a trigger (or a frame), then the straight line of stages.

        Returns:
            The outcome, or None when no trigger/frame came within ``runtime.trigger_poll_ms``.

        Raises:
            EndOfStream: a replay ended. PlcError: the PLC link is lost. EngineError: the engine failed
            (the part was answered fail-safe first).
        """
        cfg = self.cfg
        poll = cfg.runtime.trigger_poll_ms
        trigger: Trigger | None = None
        if cfg.trigger_source is TriggerSource.PLC:
            trigger = self.plc.wait_trigger(poll)
            if trigger is None:
                return None
        t0 = trigger.t_ns if trigger else time.monotonic_ns()
        lat: dict[str, float] = {}
        self.plc.set_status(ready=False, busy=True, fault=False)
        frame: Frame | None = None
        score = raw = quality = None
        rois: list[RoiDecision] = []
        error = None
        pred_map = None
        seen = None  # the image the model judged (aligned), archived with its heatmap
        try:
            t = time.monotonic_ns()
            frame = self.camera.grab(cfg.camera.timeout_ms if trigger else poll)
            if trigger is None:
                t0 = t
            lat[CAPTURE] = _ms(t)
            t = time.monotonic_ns()
            image, quality = self.model.align(frame.image)
            seen = image
            lat[ALIGN] = _ms(t)
            t = time.monotonic_ns()
            preds = self.model.infer_rois(image)
            lat[INFER] = _ms(t)
            t = time.monotonic_ns()
            decision = decide(preds, cfg.decision)
            rois, verdict, score, raw = list(decision.rois), decision.verdict, decision.score, decision.raw_score
            pred_map = preds[0][2].map[0] if len(preds) == 1 else None
            verdict, error = apply_budget(verdict, (time.monotonic_ns() - t0) / 1e6, cfg.decision)
            lat[DECIDE] = _ms(t)
        except EndOfStream:
            if trigger is None:
                raise
            verdict, error = Verdict.FAULT, "camera: replay ended"
        except AlignmentError as exc:
            verdict, error = cfg.decision.no_read_as, f"alignment: {exc}"
        except CameraError as exc:
            if trigger is None:  # free-run: no frame, no part
                self.plc.set_status(ready=True, busy=False, fault=True)
                self._idle_log.warn(f"camera: {exc}")
                return None
            verdict, error = Verdict.FAULT, f"camera: {exc}"
        except EngineError:
            self._signal(trigger, Verdict.FAULT, None)
            raise
        part_id = str(trigger.part_id) if trigger else str(self.seq)
        t = time.monotonic_ns()
        self._signal(trigger, verdict, score)
        lat[SIGNAL] = _ms(t)
        lat[TOTAL] = (time.monotonic_ns() - t0) / 1e6
        self.plc.set_status(ready=True, busy=False, fault=False)
        outcome = PartOutcome(self.seq, part_id, verdict, score, frame.source if frame else "", lat, rois, error)
        self._record(outcome, raw, quality, seen if seen is not None else (frame.image if frame else None), pred_map)
        self.seq += 1
        self.last = outcome
        if self.on_part:
            self.on_part(outcome)
        return outcome

    def _signal(self, trigger: Trigger | None, verdict: Verdict, score: float | None) -> None:
        """Send the verdict; a FAULT (error, timeout, overrun) goes out as ``plc.failsafe_verdict`` (reject)."""
        part_id = trigger.part_id if trigger else self.seq
        if verdict is Verdict.FAULT:
            self.plc.send_failsafe(part_id, self.seq)
        else:
            self.plc.send_result(PartResult(part_id, self.seq, verdict, float("nan") if score is None else score))

    def _record(self, o: PartOutcome, raw, quality, image: np.ndarray | None, amap) -> None:
        lat = o.latencies_ms
        rec = PartRecord.now(
            part_id=o.part_id, seq=o.seq, verdict=o.verdict, score=o.score, raw_score=raw,
            **{f"{stage}_ms": lat.get(stage) for stage in TIMINGS},
            model_hash=self.model.model_hash, align_quality=quality,
            roi_scores={r.name: r.score for r in o.rois}, error=o.error)
        save = self.cfg.storage.save_images
        keep = image is not None and (save is SaveImages.ALL or (save is SaveImages.REJECTS and not o.verdict.passes))
        self.recorder.submit(rec, image if keep else None, amap if keep else None)
        self.metrics.observe_part(o.verdict, {k: lat.get(k) for k in TIMINGS})


class RateLimitedLog:
    """Warn at most once per ``period_s`` (a camera idle between parts is not news every 200 ms)."""

    def __init__(self, logger: logging.Logger, period_s: float):
        self.logger, self.period_s, self._last, self.suppressed = logger, period_s, -1e18, 0

    def warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last >= self.period_s:
            extra = f" ({self.suppressed} similar suppressed)" if self.suppressed else ""
            self.logger.warning("%s%s", message, extra)
            self._last, self.suppressed = now, 0
        else:
            self.suppressed += 1


def _ms(t_ns: int) -> float:
    return (time.monotonic_ns() - t_ns) / 1e6
