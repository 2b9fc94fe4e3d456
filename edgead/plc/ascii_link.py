"""ASCII telegram link: ``T<id>\\r\\n`` triggers in, one result line per part out (see ``ascii_proto``).

Handshake: every trigger line is queued (FIFO, ``plc.queue_depth``) as soon as it is read and answered in order
with its own id. A trigger beyond the bound is answered at once with the fault line for its id (e.g.
``FLT 42\\r\\n``), ahead of the results still pending. Stale input is flushed on open (a trigger sent before the
station was up has no capture). ASCII has no status channel and no persistent output, so ``set_status`` and
``heartbeat`` send nothing and the fail-safe state is simply "no OK line".

Noise is normal on a line and never stops the link: an over-long line counts as one garbage line (see
``ascii_proto.LineFramer``). ``max_garbage_lines`` garbage lines in a row (usually a baud rate or parity
mismatch) are logged as an error and reported in :attr:`AsciiLink.line_problem` (the daemon shows it in
``/healthz`` and ``STATUS=``) until the next valid trigger; only a vanished port raises ``PlcError``.
"""
from __future__ import annotations

import logging
import time

from edgead.errors import PlcError
from edgead.plc import ascii_proto
from edgead.plc.base import PartResult, PlcLink, Trigger, TriggerQueue
from edgead.plc.config import PlcConfig
from edgead.plc.serial_port import SerialPort
from edgead.verdict import Verdict

log = logging.getLogger(__name__)


class AsciiLink(PlcLink):
    """ASCII telegrams over a serial port.

    Args:
        url: pyserial URL of the port.
        cfg: the ``plc`` section.

    Raises:
        PlcError: if the port cannot be opened.
    """

    def __init__(self, url: str, cfg: PlcConfig):
        self._cfg = cfg.ascii
        self.failsafe_verdict = cfg.failsafe_verdict
        self._port = SerialPort(url, cfg.serial)
        self._framer = ascii_proto.LineFramer(self._cfg)
        self._queue = TriggerQueue(cfg.queue_depth, self._answer_overrun)
        self._garbage_run = 0
        self.garbage_lines = 0
        self.last_garbage = b""
        self.line_problem: str | None = None
        try:
            self._port.reset_input()
        except PlcError:
            self._port.close()
            raise

    @property
    def overruns(self) -> int:  # type: ignore[override]
        """Triggers answered with FAULT because the queue was full."""
        return self._queue.overruns

    def _answer_overrun(self, trigger: Trigger) -> None:
        self._port.write(ascii_proto.encode_result(PartResult(trigger.part_id, 0, Verdict.FAULT, float("nan")),
                                                   self._cfg))

    def _pump(self, timeout_ms: float) -> None:
        chunk = self._port.read_some(4096, timeout_ms)
        if not chunk:
            return
        now = time.monotonic_ns()
        for item in self._framer.feed(chunk):
            if isinstance(item, ascii_proto.TriggerLine):
                self._garbage_run = 0
                self.line_problem = None
                self._queue.put(Trigger(item.part_id, now, item.recipe, item.lot_id))
            else:
                self._note_garbage(item.raw)

    def _note_garbage(self, raw: bytes) -> None:
        self.garbage_lines += 1
        self._garbage_run += 1
        self.last_garbage = raw
        if self._garbage_run == self._cfg.max_garbage_lines:  # logged once per run of garbage
            self.line_problem = (f"PLC port {self._port.url!r}: {self._garbage_run} garbage lines in a row "
                                 f"(last {raw[:40]!r}); check baud rate/parity ({self._port.settings}) and that "
                                 f"the PLC sends '{self._cfg.trigger_prefix}<id>\\r\\n'")
            log.error("%s", self.line_problem)

    def wait_trigger(self, timeout_ms: float) -> Trigger | None:
        """The oldest pending trigger, reading the port for at most ``timeout_ms``.

        Raises:
            PlcError: if the port vanished.
        """
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            trigger = self._queue.get(0)
            if trigger is not None:
                return trigger
            remaining_ms = (deadline - time.monotonic()) * 1000
            if remaining_ms <= 0:
                return None
            self._pump(remaining_ms)
            if self._port.take_wake():
                return self._queue.get(0)

    @property
    def wakeable(self) -> bool:
        """Whether :meth:`wake` ends a wait (a POSIX serial port, a pty, ``loop://``; not ``socket://``)."""
        return self._port.wakeable

    def wake(self) -> None:
        """End a :meth:`wait_trigger` in progress (or the next one) early; any thread."""
        self._port.wake()

    def send_result(self, result: PartResult) -> None:
        """Write the result line for ``result``.

        Raises:
            PlcError: if the port vanished.
        """
        self._port.write(ascii_proto.encode_result(result, self._cfg))

    def set_status(self, ready: bool, busy: bool, fault: bool) -> None:
        """No status channel in the ASCII protocol."""

    def heartbeat(self) -> None:
        """No heartbeat in the ASCII protocol."""

    def close(self) -> None:
        """Release the port (idempotent)."""
        self._port.close()
