"""The always-on loop around :class:`Station`: systemd notify/watchdog, SIGTERM drain, SIGHUP reload, summary.

``READY=1`` goes out only after the engine is loaded and warmed up and the camera and PLC link are open;
``WATCHDOG=1`` comes from the loop itself (a hung loop stops the pings and systemd restarts the service), and
stops while every part faults (``runtime.degraded_after_faults`` in a row: the station is not ready, and systemd
restarts it after ``WatchdogSec`` unless a good part comes first); ``STATUS=`` says parts/min and the last verdict,
or what is wrong. SIGTERM finishes the part in flight, writes what is pending, drives the PLC outputs fail-safe and
exits 0. SIGHUP reads the config file again and rebuilds every component whose keys changed (the model always;
:mod:`edgead.daemon.reload` has the table); if the new ones fail to open, or a key cannot change while running, the
station keeps its running components and config and the error is logged. Every message and log line has URL
passwords redacted.
"""
from __future__ import annotations

import gc
import logging
import signal
import threading
import time

from edgead.camera import EndOfStream
from edgead.daemon.config import GcMode, StationConfig, load_station
from edgead.daemon.reload import LOGGING
from edgead.daemon.notify import Notifier, WatchdogPinger
from edgead.daemon.station import PartOutcome, Station
from edgead.daemon.summary import RunSummary, verdict_counts
from edgead.errors import EdgeadError
from edgead.observe.logs import setup_logging
from edgead.redact import redact

log = logging.getLogger(__name__)
__all__ = ["RunSummary", "Runner", "verdict_counts"]


class Runner:
    """Owns the stop/reload flags and the notify protocol; :meth:`run` is the daemon's main loop."""

    def __init__(self, cfg: StationConfig, *, notifier: Notifier | None = None, on_part=None, on_ready=None):
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.on_part = on_part
        self.on_ready = on_ready
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.summary = RunSummary(database=str(cfg.storage.database), images_dir=str(cfg.storage.images_dir))

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT -> drain and stop; SIGHUP -> reload (main thread only)."""
        def _stop(signum, _frame):
            self.summary.stopped_by = signal.Signals(signum).name
            self.stop.set()
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload.set())

    def _on_part(self, o: PartOutcome) -> None:
        self.summary.add(o.verdict, o.latencies_ms)
        if self.on_part:
            self.on_part(o)

    def run(self) -> RunSummary:
        """Open the station, announce READY, inspect until stopped (or the replay ends), then drain.

        Raises:
            EdgeadError: a fatal error (PLC lost, engine failed, bad config); outputs are already fail-safe.
        """
        n = self.notifier
        n.status("starting: loading engine, opening camera and PLC")
        n.extend_timeout(int(300e6))
        t_start = time.monotonic()
        pinger = WatchdogPinger(n)
        last_status = last_heartbeat = 0.0
        with Station(self.cfg, on_part=self._on_part) as station:
            freeze_heap(self.cfg.runtime.gc)
            n.ready(ready_status(station.model.model_hash, self.cfg.camera.url))
            if self.on_ready is not None:
                self.on_ready()
            try:
                while not self.stop.is_set():
                    if self.reload.is_set():
                        self._reload(station)
                    try:
                        station.step()
                    except EndOfStream:
                        self.summary.stopped_by = "end of stream"
                        break
                    if not station.faulting:  # while every part faults, systemd hears nothing: not ready
                        pinger.tick()
                    now, cfg = time.monotonic(), self.cfg  # a reload may have changed the config
                    if now - last_heartbeat >= cfg.runtime.heartbeat_ms / 1000.0:
                        station.plc.heartbeat()
                        last_heartbeat = now
                    if now - last_status >= cfg.observe.status_interval_s:
                        n.status(self._status_line(now - t_start, station))
                        last_status = now
                    if cfg.runtime.max_parts and self.summary.parts >= cfg.runtime.max_parts:
                        self.summary.stopped_by = "max_parts"
                        break
            except EdgeadError as exc:
                self.summary.stopped_by = type(exc).__name__
                n.status(redact(f"failed: {exc.message}"))
                raise
            finally:
                n.stopping()
                n.status("stopping: writing pending records")
                self.summary.seconds = time.monotonic() - t_start
                station.close()
                self.summary.images_skipped = station.images_skipped
                self.summary.records_written = station.records_written
        return self.summary

    def _status_line(self, elapsed_s: float, station: Station) -> str:
        rate = 60.0 * self.summary.parts / max(elapsed_s, 1e-9)
        last = station.last.verdict.value if station.last else "-"
        line = f"{self.summary.parts} parts, {rate:.0f} parts/min, last {last}"
        problem = station.problem()
        return redact(f"DEGRADED: {problem}; {line}" if problem else line)

    def _reload(self, station: Station) -> None:
        self.reload.clear()
        self.notifier.reloading()
        try:
            new_cfg = load_station(self.cfg.source) if self.cfg.source else self.cfg
            plan = station.reload(new_cfg)
        except EdgeadError as exc:
            log.error("reload failed, keeping the running model and config: %s", exc)
        else:
            if LOGGING in plan.components:
                setup_logging(new_cfg.observe.log_level.upper(), new_cfg.observe.log_format)
            self.cfg = new_cfg
            freeze_heap(new_cfg.runtime.gc)  # the new model's objects; the old ones' cycles collected first
            self.summary.database, self.summary.images_dir = str(new_cfg.storage.database), str(
                new_cfg.storage.images_dir)
            log.info("reloaded: model %s; rebuilt %s; changed %s", station.model.model_hash[:12],
                     ", ".join(plan.components), ", ".join(plan.changed) or "nothing")
        self.notifier.ready("reloaded")


def freeze_heap(mode: GcMode) -> None:
    """Under ``runtime.gc: freeze``: collect once, then freeze every object alive (the engine's, the model's, the
    imports') so that the loop's collections never scan them; objects frozen before are unfrozen first, so that
    what a reload dropped is collected. ``default``: unfreeze, and leave Python's collector as it is."""
    gc.unfreeze()
    if mode is GcMode.FREEZE:
        gc.collect()
        gc.freeze()


def ready_status(model_hash: str, camera_url: str) -> str:
    """The ``STATUS=`` text sent with ``READY=1`` (the camera URL without its password)."""
    return redact(f"ready: model {model_hash[:12]}, camera {camera_url}")
