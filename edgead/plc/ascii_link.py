"""ASCII telegram link: ``T<id>\\r\\n`` triggers in, one result line per part out (see ``ascii_proto``).

Handshake: every trigger line is queued (FIFO, ``plc.queue_depth``) as soon as it is read and answered in order
with its own id. A trigger beyond the bound is answered at once with the fault line for its id (e.g.
``FLT 42\\r\\n``), ahead of the results still pending. Stale input is flushed on open (a trigger sent before the
station was up has no capture). ASCII has no status channel and no persistent output, so ``set_status`` and
``heartbeat`` send nothing and the fail-safe state is simply "no OK line". ``max_garbage_lines`` garbage lines in
a row raise ``PlcError`` (usually a baud rate / parity mismatch).
"""
from __future__ import annotations

import time

from edgead.errors import PlcError
from edgead.plc import ascii_proto
from edgead.plc.base import PartResult, PlcLink, Trigger, TriggerQueue
from edgead.plc.config import PlcConfig
from edgead.plc.serial_port import SerialPort
from edgead.verdict import Verdict


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
        self._buf = bytearray()
        self._queue = TriggerQueue(cfg.queue_depth, self._answer_overrun)
        self._garbage_run = 0
        self.garbage_lines = 0
        self.last_garbage = b""
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
        self._buf += chunk
        while True:
            used, item = ascii_proto.decode(bytes(self._buf), self._cfg)
            if used == 0:
                return
            del self._buf[:used]
            if isinstance(item, ascii_proto.TriggerLine):
                self._garbage_run = 0
                self._queue.put(Trigger(item.part_id, now))
            elif isinstance(item, ascii_proto.GarbageLine):
                self._note_garbage(item.raw)

    def _note_garbage(self, raw: bytes) -> None:
        self.garbage_lines += 1
        self._garbage_run += 1
        self.last_garbage = raw
        if self._garbage_run >= self._cfg.max_garbage_lines:
            raise PlcError(f"PLC port {self._port.url!r}: {self._garbage_run} garbage lines in a row "
                           f"(last {raw[:40]!r})",
                           hint=f"check baud rate/parity ({self._port.settings}) and that the PLC sends "
                                f"'{self._cfg.trigger_prefix}<id>\\r\\n'")

    def wait_trigger(self, timeout_ms: float) -> Trigger | None:
        """The oldest pending trigger, reading the port for at most ``timeout_ms``.

        Raises:
            PlcError: if the port vanished or only garbage arrives.
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
