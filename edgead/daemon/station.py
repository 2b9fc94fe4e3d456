"""The station: capture -> align -> infer -> decide -> record -> signal, one part per :meth:`Station.step`.

Resources (engine, camera, PLC link, record store, metrics endpoint) have one owner, this class, and live from
``__enter__`` to ``__exit__``; each component has its own ExitStack, so a SIGHUP reload can rebuild one of them
(:mod:`edgead.daemon.reload`). :meth:`Station.step` is a straight line with a timing per stage, and two promises:

* **Record before answer.** The part's row is committed (SQLite WAL) before the PLC gets its answer, so every
  part the PLC got an answer for is on record, whatever kills the process afterwards. Images and overlays are
  archived off the hot path and never hold the row back.
* **No error becomes an accept, and no part ends the daemon.** An error in any stage of a part -- typed or not --
  is that part's fault verdict, answered with ``plc.failsafe_verdict`` and recorded with the stage and the cause.
  Only a lost PLC port (:class:`~edgead.errors.PlcError`), a dead record store
  (:class:`~edgead.errors.RecordError`) or ``runtime.max_consecutive_faults`` faults in a row
  (:class:`~edgead.errors.FaultLimitError`) end the loop, each with its own exit code; systemd restarts the
  service.
"""
from __future__ import annotations

import gc
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from edgead.align.aligner import resample_onto
from edgead.camera import EndOfStream, open_camera
from edgead.contract.decide import RoiDecision, RoiPrediction, decide, with_areas
from edgead.daemon.capture import ARRIVED_NS, CaptureAhead
from edgead.daemon.config import SaveImages, StationConfig, TriggerSource, parse_listen
from edgead.daemon.decide import apply_budget
from edgead.daemon.events import EventWriter, drift_event
from edgead.daemon.plant import Plant, Selection
from edgead.daemon.preflight import SHADOW_ADMISSION, check_station
from edgead.daemon.recipes import RecipeBook, SelectionError, load_recipes
from edgead.daemon.recorder import ImageWriter, Recorder
from edgead.daemon.reload import DEVICES, LOGGING, ORDER, PLC, RECORDER, SHADOW, ReloadPlan, plan_reload
from edgead.errors import AlignmentError, CameraError, EdgeadError, FaultLimitError, FrameError, PlcError, RecordError
from edgead.plc import PartResult, Trigger, open_plc
from edgead.records import Checkpointer, ImageArchive, PartRecord, RecordStore, RowUpdate
from edgead.records.store import WRITER_CACHE_KIB, part_row
from edgead.stages import ALIGN, CAPTURE, DECIDE, INFER, QUEUE, RECORD, SIGNAL, STAGES, TIMINGS, TOTAL
from edgead.verdict import Verdict

log = logging.getLogger(__name__)
_TIMING_FIELDS = tuple((stage, f"{stage}_ms") for stage in TIMINGS)  # stage -> the PartRecord field of its time
COMPONENTS = tuple(c for c in ORDER if c != LOGGING)
"""What the station opens, in order (closed in reverse)."""
__all__ = ["COMPONENTS", "STAGES", "PartOutcome", "Station"]


@dataclass
class PartOutcome:
    """What happened to one part (handed to ``on_part`` callbacks).

    Attributes:
        verdict: what was decided and recorded (a ``fault`` goes to the PLC as ``plc.failsafe_verdict``).
        answer: the verdict the PLC was sent, None if the answer failed.
        row_id: the part's row in the record store, None when the store refused it.
    """

    seq: int
    part_id: str
    verdict: Verdict
    score: float | None
    source: str
    latencies_ms: dict = field(default_factory=dict)
    rois: list[RoiDecision] = field(default_factory=list)
    error: str | None = None
    answer: Verdict | None = None
    row_id: int | None = None


@dataclass
class _Part:
    """One part on its way through the loop (internal: the outcome plus what the record and archive need)."""

    outcome: PartOutcome
    trigger: Trigger | None
    t0: int
    raw: float | None = None
    quality: float | None = None
    image: np.ndarray | None = None  # what is archived: the aligned frame, or the frame (see ``warp``)
    warp: np.ndarray | None = None  # set when only the ROIs were resampled: the writer resamples ``image`` along it
    size: tuple[int, int] | None = None
    preds: list[RoiPrediction] | None = None  # what was decided: the areas not counted before the answer are counted
    t_ns: int = field(default_factory=time.time_ns)
    selection: Selection | None = None  # the recipe and lot it is judged and recorded with
    late: list[str] = field(default_factory=list)  # notes made after the row was committed (the answer's)

    @property
    def amap(self) -> np.ndarray | None:
        """The anomaly map archived with the image: the part's, when it was judged whole (one inference)."""
        return self.preds[0].prediction.map[0] if self.preds is not None and len(self.preds) == 1 else None

    def fail(self, verdict: Verdict, error: str) -> None:
        self.outcome.verdict, self.outcome.error = verdict, error

    def note(self, text: str) -> None:
        o = self.outcome
        o.error = f"{o.error}; {text}" if o.error else text

    @property
    def wire_id(self) -> int | str:
        """The id the PLC gave (int or text), or the sequence number when it gave none."""
        return self.trigger.part_id if self.trigger else self.outcome.seq


class FaultRun:
    """Consecutive fault verdicts, and the last one's error (the thresholds are read from the live config)."""

    def __init__(self):
        self.count = 0
        self.last_error: str | None = None

    def observe(self, verdict: Verdict, error: str | None) -> None:
        if verdict is Verdict.FAULT:
            self.count += 1
            self.last_error = error
        else:
            self.count = 0


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
        self.model: RecipeBook | None = None  # every recipe; the one in force judges
        self.recorder: Recorder | None = None
        self.metrics_server = None
        self.camera = None
        self.plc = None
        self.plant: Plant | None = None
        self.metrics = None
        self.shadow = None  # the shadow model's runner (edgead.daemon.shadow), None without shadow.bundle
        self.drift = None  # the drift monitor (edgead.daemon.drift), rebuilt with every reload
        self._drift_switches = 0  # the recipe switches the drift monitor was built after
        self.drift_listeners: list = []  # called with each DriftEvent (MQTT/OPC UA events hook in here)
        self.faults = FaultRun()
        self._closers: dict[str, ExitStack] = {}  # component -> what releases it, one per component
        self._admitted: dict = {}  # recipe -> Admission from the last check, until the model is opened with it
        self._shadow_admitted = None  # the shadow bundle's Admission from the last check, until the shadow opens
        self._retired = {"written": 0, "images_skipped": 0}  # counts of recorders replaced by a reload
        self._idle_log = RateLimitedLog(log, period_s=60.0)

    # -- lifetime ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "Station":
        from edgead.observe.metrics import State, StationMetrics

        self._check(self.cfg)  # everything `edgead check` checks, before anything is opened
        self.metrics = StationMetrics()
        try:
            for name in COMPONENTS:
                self._install(name, *self._open(name, self.cfg))
            self.drift = self._new_drift(self.cfg)
            self.plc.set_status(ready=True, busy=False, fault=False)
            self.metrics.set_state(State.READY)
        except BaseException:
            self.close()
            raise
        return self

    def _check(self, cfg: StationConfig) -> None:
        """:func:`check_station`, keeping its admissions for the model and the shadow to open with."""
        admitted: dict = {}
        check_station(cfg, admitted)
        self._shadow_admitted = admitted.pop(SHADOW_ADMISSION, None)
        self._admitted = admitted

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

    def _open_model(self, cfg: StationConfig, stack: ExitStack) -> RecipeBook:
        """Every recipe (or the one model), loaded and verified; a reload keeps the recipe the plant selected."""
        admitted, self._admitted = self._admitted, {}  # what check admitted for this cfg: loaded, not admitted again
        book = load_recipes(cfg, keep=self.model.name if self.model is not None else None, admitted=admitted)
        stack.callback(book.close)
        return book

    def _open_plant(self, cfg: StationConfig, stack: ExitStack) -> Plant:
        plant = Plant(cfg, self.model, self.metrics)
        stack.callback(plant.close)
        return plant

    def _open_shadow(self, cfg: StationConfig, stack: ExitStack):
        if cfg.shadow.bundle is None:
            return None
        from edgead.daemon.shadow import ShadowRunner

        admission, self._shadow_admitted = self._shadow_admitted, None  # what check admitted: not admitted again
        runner = ShadowRunner(cfg, self.metrics, admission)
        stack.callback(runner.close)
        return runner

    def _new_drift(self, cfg: StationConfig, reason: str = ""):
        """A drift monitor for the recipe in force; the one it replaces clears its alarms first (``reason``)."""
        from edgead.daemon.drift import DriftMonitor

        if self.drift is not None:
            self.drift.retire(reason)
        monitor = DriftMonitor(cfg.drift, self.model.good_quantiles, self.model.reference, self.metrics)
        judged_with = {"recipe": self.model.name, "model_hash": self.model.model_hash}  # its events name them
        monitor.subscribe(lambda event: self._drift_event(event, judged_with))
        monitor.listeners.extend(self.drift_listeners)
        return monitor

    def _drift_event(self, event, judged_with: dict) -> None:
        """A drift alarm raised or cleared: on record (the event writer's thread) and, with OPC UA, an OPC UA event
        (the server's thread); MQTT north publishes it from the record. Never waits."""
        record = drift_event(event, self.cfg.name, time.time_ns(), judged_with)
        if self.recorder is not None and self.recorder.events is not None:
            self.recorder.events.submit(record)
        if self.plant is not None:
            self.plant.event(record)

    def _open_recorder(self, cfg: StationConfig, stack: ExitStack) -> Recorder:
        """The record store (the loop's connection), its checkpointer, the image writer and the recorder. The
        stack unwinds in reverse: the pending row updates and events are written, then the WAL checkpointed, then
        closed."""
        st = cfg.storage
        store = stack.enter_context(RecordStore(st.database, synchronous=st.synchronous, autocheckpoint=False,
                                                cache_kib=WRITER_CACHE_KIB))
        stack.enter_context(Checkpointer(st.database, st.checkpoint_interval_s, st.synchronous))
        events = stack.enter_context(EventWriter(st.database, st.synchronous, self.metrics))
        images = None
        if st.save_images is not SaveImages.NONE:
            images = ImageWriter(ImageArchive(st.images_dir, st.quota_mb, fmt=st.image_format), cfg.runtime.image_queue,
                                 cfg.runtime.image_nice)
        recorder = Recorder(store, images, st.on_record_failure, cfg.runtime.record_queue, events)
        stack.callback(recorder.close)
        return recorder

    def _open_metrics_server(self, cfg: StationConfig, stack: ExitStack):
        if not cfg.observe.metrics_listen:
            return None
        from edgead.observe.http import MetricsServer

        host, port = parse_listen(cfg.observe.metrics_listen)
        return stack.enter_context(MetricsServer(self.metrics, host, port))

    def _open_camera(self, cfg: StationConfig, stack: ExitStack):
        """The camera; when it starts the inspections, wrapped to capture ahead (:mod:`edgead.daemon.capture`)."""
        camera = stack.enter_context(open_camera(cfg.camera.url, cfg.camera.options()))
        if cfg.trigger_source is TriggerSource.CAMERA and cfg.runtime.capture_ahead:
            camera = stack.enter_context(CaptureAhead(camera, cfg.runtime.capture_ahead, cfg.runtime.trigger_poll_ms))
        return camera

    def _open_plc(self, cfg: StationConfig, stack: ExitStack):
        return stack.enter_context(open_plc(cfg.plc.url, cfg.plc))

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Write what is pending, checkpoint, drive the PLC outputs fail-safe, release everything (idempotent)."""
        if self.shadow is not None and self.recorder is not None:  # the last part's shadow verdict goes on record too
            self.shadow.wait_idle(5.0)
            self._collect_shadow()
        if self.drift is not None:  # its alarms end with it (on record, and to OPC UA clients)
            self.drift.retire("the station stopped")
            self.drift = None
        with ExitStack() as all_components:  # every one is released even if another fails; in reverse order
            for name in COMPONENTS:
                if name in self._closers:
                    all_components.push(self._closers.pop(name))

    def reload(self, cfg: StationConfig) -> ReloadPlan:
        """Apply a new config between two parts: rebuild every component whose keys changed (the model always).

        The new config is checked first as `edgead check` does. Components that can run beside the old ones
        (model, recorder, metrics endpoint) are built first; devices (camera, PLC link) are closed, then opened
        with the new config. If anything fails, the station keeps (or gets back) the old components and config,
        and the error is raised.

        Args:
            cfg: the new, validated config.

        Returns:
            The :class:`~edgead.daemon.reload.ReloadPlan` that was applied.

        Raises:
            ReloadRefused: a changed key cannot change while the station runs (nothing was changed).
            EdgeadError: the new config fails the checks, or a new component failed to open (nothing was
                changed), or a device could neither be reopened with the new config nor with the old one.
        """
        plan = plan_reload(self.cfg, cfg)
        self._check(cfg)
        if self.shadow is not None and SHADOW in plan.components:  # the old shadow's last verdict goes on record
            self.shadow.wait_idle(5.0)
            self._collect_shadow()
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
            if name == RECORDER and old_value is not None:  # its close wrote what was pending: its counts are final
                self._retired["written"] += old_value.written
                self._retired["images_skipped"] += old_value.images_skipped
        self.cfg = cfg
        self.drift = self._new_drift(cfg, "the station reloaded its config: the windows start over")
        self._drift_switches = self.model.switches
        self.plant.reloaded(cfg)
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
                self.plc.set_status(ready=True, busy=False, fault=self.faulting)

    # -- health -----------------------------------------------------------------------------------------------
    @property
    def faulting(self) -> bool:
        """True while every recent part faulted (``runtime.degraded_after_faults`` in a row)."""
        return self.faults.count >= self.cfg.runtime.degraded_after_faults

    def problem(self) -> str | None:
        """Why the station is not fully healthy, or None: the record store, a run of faults, a noisy PLC line."""
        if self.recorder.degraded:
            return f"record store refuses writes ({self.recorder.backlog} records kept): {self.recorder.failure}"
        if self.faulting:
            return f"{self.faults.count} faults in a row, the last: {self.faults.last_error}"
        return self.plc.line_problem

    def _publish_health(self) -> None:
        from edgead.observe.metrics import State

        problem = self.problem()
        self.metrics.set_state(State.DEGRADED if problem else State.READY, problem)
        self.plant.health(problem is not None)

    # -- the loop body ----------------------------------------------------------------------------------------
    def step(self) -> PartOutcome | None:
        """Inspect one part: wait for a trigger (or a frame), then the straight line of stages.

        Returns:
            The outcome, or None when no trigger/frame came within ``runtime.trigger_poll_ms``.

        Raises:
            EndOfStream: a camera-triggered replay ended. PlcError: the PLC link is lost (the part in flight is
            recorded first). RecordError: the record store refuses writes and the station stops (the part was
            answered fail-safe). FaultLimitError: ``runtime.max_consecutive_faults`` faults in a row.
        """
        trigger: Trigger | None = None
        if self.cfg.trigger_source is TriggerSource.PLC:
            trigger = self.plant.wait_trigger(self.plc, self.model, self.cfg.runtime.trigger_poll_ms)
            if trigger is None:
                self._idle()
                return None
        else:
            self.plant.take_requests(self.model)
        collecting = gc.isenabled()
        gc.disable()  # no garbage collection between the trigger and the answer: the objects made meanwhile are
        try:          # collected after it, in the part's own _finish or the next idle time
            self.plc.set_status(ready=False, busy=True, fault=self.faulting)
            if trigger is not None:  # free-run polls the camera: Busy would flap with every poll
                self.plant.busy()
            part = self._inspect(trigger)
            if part is not None:
                self._record_and_answer(part)
        finally:
            if collecting:
                gc.enable()
        if part is None:
            self._idle()
            return None
        return self._finish(part)

    def _idle(self) -> None:
        """Between parts: write the pending row updates, refresh the health state."""
        self._collect_shadow()
        self.recorder.flush()
        self._publish_health()

    def _inspect(self, trigger: Trigger | None) -> _Part | None:
        """Capture, align, infer, decide. Every error becomes the part's verdict; None: free-run, no frame."""
        cfg = self.cfg
        poll = cfg.runtime.trigger_poll_ms
        t_start = time.monotonic_ns()
        outcome = PartOutcome(self.seq, str(trigger.part_id) if trigger else str(self.seq), Verdict.FAULT, None, "")
        part = _Part(outcome, trigger, trigger.t_ns if trigger else t_start)
        part.selection = self.plant.select(self.model, trigger)  # between parts: one recipe judges this part
        if self.model.switches != self._drift_switches:  # another recipe: its reference and scores are the baseline
            self.drift = self._new_drift(cfg, f"recipe {self.model.name} in force: the windows start over")
            self._drift_switches = self.model.switches
        rules = self.model.decision(cfg.decision)
        lat = outcome.latencies_ms
        stage = CAPTURE
        frame = None
        if trigger is not None:
            lat[QUEUE] = (t_start - part.t0) / 1e6
        try:
            t = time.monotonic_ns()
            frame = self.camera.grab(cfg.camera.timeout_ms if trigger else poll)
            outcome.source = frame.source
            arrived = frame.meta.get(ARRIVED_NS)
            if arrived is not None:  # captured ahead: the part began when its frame arrived, not when the loop
                part.t0 = arrived   # started waiting for it (its wait for the loop, if any, is its queue time)
                lat[QUEUE] = max(0, t - arrived) / 1e6
                t = max(arrived, t)
            lat[CAPTURE] = _ms(t)
            if part.selection.refused is not None:  # the frame is taken (a triggered camera stays in step)
                raise part.selection.refused
            stage = ALIGN
            t = time.monotonic_ns()
            placed = self.model.place(frame.image)  # only what inference reads is resampled
            part.quality = placed.quality
            if placed.image is not None:
                part.image = placed.image
            else:
                part.image, part.warp, part.size = placed.frame, placed.warp, placed.size
            lat[ALIGN] = _ms(t)
            stage = INFER
            t = time.monotonic_ns()
            preds = self.model.infer_rois(placed)
            lat[INFER] = _ms(t)
            stage = DECIDE
            t = time.monotonic_ns()
            decision = decide(preds, rules, area=False)  # the areas the verdict does not need: after the answer
            outcome.rois, outcome.score, part.raw = list(decision.rois), decision.score, decision.raw_score
            part.preds = preds
            verdict, error = apply_budget(decision.verdict, (time.monotonic_ns() - part.t0) / 1e6, rules)
            outcome.verdict, outcome.error = verdict, error
            lat[DECIDE] = _ms(t)
        except EndOfStream:
            if trigger is None:
                raise
            part.fail(Verdict.FAULT, "camera: replay ended")
        except SelectionError as exc:  # an unknown recipe, a garbled lot id: this part is not judged
            part.fail(Verdict.FAULT, exc.message)
        except AlignmentError as exc:
            part.fail(rules.no_read_as, f"alignment: {exc}")
        except FrameError as exc:  # a frame came but is unusable: a part, recorded as a fault
            part.fail(Verdict.FAULT, f"camera: {exc}")
        except CameraError as exc:
            if trigger is None:  # free-run: no frame, no part
                self._no_frame(exc, t_start)
                return None
            part.fail(Verdict.FAULT, f"camera: {exc}")
        except EdgeadError as exc:  # EngineError, ImageError, ...: this part's fault, not the daemon's end
            part.fail(Verdict.FAULT, f"{stage}: {exc}")
        except Exception as exc:  # noqa: BLE001 -- a bug in one part must not stop the line
            log.exception("part %s: unexpected error in stage %s", outcome.part_id, stage)
            part.fail(Verdict.FAULT, f"{stage}: internal error: {type(exc).__name__}: {exc}")
        if part.image is None and frame is not None:
            part.image = frame.image
        return part

    def _no_frame(self, exc: CameraError, t_start: int) -> None:
        """Free-run without a frame: fault status bit, a rate-limited warning, and no busy loop on a source that
        fails at once."""
        self.plc.set_status(ready=True, busy=False, fault=True)
        self._idle_log.warn(f"camera: {exc}")
        left_s = self.cfg.runtime.trigger_poll_ms / 1000 - (time.monotonic_ns() - t_start) / 1e9
        if left_s > 0:
            time.sleep(left_s)

    def _record(self, part: _Part) -> PartRecord:
        o = part.outcome
        lat = o.latencies_ms
        return PartRecord(
            t_ns=part.t_ns, part_id=o.part_id, seq=o.seq, verdict=o.verdict, score=o.score, raw_score=part.raw,
            **{field: lat.get(stage) for stage, field in _TIMING_FIELDS}, model_hash=self.model.model_hash,
            align_quality=part.quality, roi_scores={r.name: r.score for r in o.rois}, error=o.error,
            plc_answer=o.answer, recipe=part.selection.recipe, lot_id=part.selection.lot_id,
            requested_by=part.trigger.requested_by if part.trigger else None)

    def _row(self, part: _Part) -> tuple:
        """``self._record(part).to_row()``, without building the record (the loop's commit)."""
        o = part.outcome
        lat = o.latencies_ms.get
        selection = part.selection
        return part_row(part.t_ns, o.part_id, o.seq, o.verdict, o.score, part.raw, lat(CAPTURE), lat(ALIGN),
                        lat(INFER), lat(DECIDE), lat(SIGNAL), lat(TOTAL), self.model.model_hash, part.quality,
                        {r.name: r.score for r in o.rois}, None, o.error, lat(RECORD), o.answer, selection.recipe,
                        selection.lot_id, lat(QUEUE), None, part.trigger.requested_by if part.trigger else None)

    def _record_and_answer(self, part: _Part) -> None:
        """Commit the row, then answer; a refused commit answers fail-safe and goes to the recorder's policy."""
        o = part.outcome
        t = time.monotonic_ns()
        try:
            o.row_id = self.recorder.commit_row(self._row(part))
        except RecordError as exc:
            o.latencies_ms[RECORD] = _ms(t)
            log.error("part %s: record not committed, answered fail-safe: %s", o.part_id, exc)
            if o.verdict is not Verdict.FAULT:
                part.note(f"decided {o.verdict.value}")
            o.verdict = Verdict.FAULT
            part.note(f"record store: {exc.message}")
            try:
                self._answer(part)
            finally:
                self.recorder.keep(self._record(part), exc)  # under `stop` this raises RecordError
            return
        o.latencies_ms[RECORD] = _ms(t)
        self._answer(part)

    def _answer(self, part: _Part) -> None:
        """Send the verdict (a fault as ``plc.failsafe_verdict``); a lost link is noted in the row, then raised."""
        o = part.outcome
        t = time.monotonic_ns()
        try:
            try:
                if o.verdict is Verdict.FAULT:
                    self.plc.send_failsafe(part.wire_id, o.seq)
                    o.answer = self.plc.failsafe_verdict
                else:
                    score = float("nan") if o.score is None else o.score
                    self.plc.send_result(PartResult(part.wire_id, o.seq, o.verdict, score))
                    o.answer = o.verdict
            except PlcError:
                raise
            except Exception as exc:  # noqa: BLE001 -- a link bug: fall back to the fail-safe answer
                log.exception("part %s: answer failed, sending the fail-safe verdict", o.part_id)
                late = f"signal: internal error: {type(exc).__name__}: {exc}; sent fail-safe"
                part.note(late)
                part.late.append(late)
                try:
                    self.plc.send_failsafe(part.wire_id, o.seq)
                except Exception as exc2:
                    raise PlcError(f"PLC link failed on the fail-safe answer of part {o.part_id}: {exc2}",
                                   hint="the link is unusable; the daemon stops and systemd restarts it") from exc2
                o.answer = self.plc.failsafe_verdict
        except PlcError as exc:
            o.latencies_ms[SIGNAL] = _ms(t)
            o.latencies_ms[TOTAL] = (time.monotonic_ns() - part.t0) / 1e6
            if o.row_id is not None:  # the row is committed; say that its answer did not go out, now
                self.recorder.later(RowUpdate(o.row_id, self._timings(part), note=f"PLC answer failed: {exc}"))
                self.recorder.flush()
            raise
        finally:
            o.latencies_ms.setdefault(SIGNAL, _ms(t))
            o.latencies_ms.setdefault(TOTAL, (time.monotonic_ns() - part.t0) / 1e6)

    @staticmethod
    def _timings(part: _Part) -> dict:
        lat = part.outcome.latencies_ms
        return {f"{stage}_ms": lat.get(stage) for stage in (RECORD, SIGNAL, TOTAL)}

    def _finish(self, part: _Part) -> PartOutcome:
        """After the answer: the row's answer and latencies (written now, in a transaction of their own, so that the
        next part's commit is its row alone), the areas the verdict did not need, the image handoff, metrics,
        health."""
        o = part.outcome
        if o.row_id is not None:
            self.recorder.later(RowUpdate(o.row_id, {**self._timings(part), "plc_answer": o.answer},
                                          note="; ".join(part.late) or None))
            self.recorder.flush()  # a failure is logged and the update kept for the next commit
            save = self.cfg.storage.save_images
            if part.image is not None and (save is SaveImages.ALL or (save is SaveImages.REJECTS
                                                                     and not o.verdict.passes)):
                self.recorder.archive(o.row_id, self._record(part), part.image, part.amap, part.warp, part.size)
        elif o.answer is not None:
            self.recorder.amend_kept(**self._timings(part), plc_answer=o.answer)
        if part.preds is not None:
            o.rois = with_areas(o.rois, part.preds)
        self.metrics.observe_part(o.verdict, {k: o.latencies_ms.get(k) for k in TIMINGS})
        self.metrics.set_queues({"capture": self.camera.ready if isinstance(self.camera, CaptureAhead) else 0,
                                  "images": self.recorder.images_waiting})
        self._after_answer(part)
        self.faults.observe(o.verdict, o.error)
        self.plc.set_status(ready=True, busy=False, fault=self.faulting)
        self.plant.part_done(self.model, o, part.selection, part.t_ns)
        self._publish_health()
        self.seq += 1
        self.last = o
        if self.on_part:
            self.on_part(o)
        limit = self.cfg.runtime.max_consecutive_faults
        if limit and self.faults.count >= limit:
            raise FaultLimitError(f"{self.faults.count} parts in a row answered with a fault (runtime."
                                  f"max_consecutive_faults); the last: {self.faults.last_error}",
                                  hint="fix the cause above (camera, model, storage); systemd restarts the service")
        return o


    # -- after the answer: neither changes a verdict -------------------------------------------------------------
    def _after_answer(self, part: _Part) -> None:
        """Drift tracking and the shadow model's hand-off (a copy of the aligned image, or a counted skip)."""
        o = part.outcome
        self.drift.observe(o.verdict, part.raw, part.quality, part.image)  # with ROIs: the frame (same statistics)
        if self.shadow is not None:
            self._collect_shadow()
            if o.row_id is not None and o.score is not None and part.image is not None:
                aligned = part.image if part.warp is None else resample_onto(part.image, part.warp, part.size)
                self.shadow.submit(o.row_id, aligned)

    def _collect_shadow(self) -> None:
        """The shadow verdicts finished so far go into the next commit (or the idle flush)."""
        if self.shadow is not None:
            for row in self.shadow.results():
                self.recorder.later(row)


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
