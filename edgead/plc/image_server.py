"""The station's Modbus register image and its handshake, shared by the RTU and TCP server links.

The links own the transport (a serial port, or TCP connections) and hand each decoded request to
:meth:`ImageServerLink.execute`, which answers it from the image: reads of coils/discrete inputs (FC01/FC02, the
same bits) and holding/input registers (FC03/FC04, the same words); writes (FC06, FC16) only to the registers the
PLC owns: trigger, recipe and lot id (``RegisterMapConfig.writable``); anything else gets an exception reply (01 unsupported function, 02 address outside the image or
not writable, 03 malformed value or count).

Handshake (addresses from ``register_map``): each write of a **new** non-zero id to *trigger* queues a trigger at
once, even while busy; the same id again is ignored, so a PLC that rewrites its trigger every scan is safe. When
the daemon takes a trigger, *trigger* is cleared (if it still holds that id), ResultValid goes to 0 and *trigger
ack* = id. A result updates verdict, counter, part id, sequence, score and then ResultValid under one lock, so a
poll never sees half a result. Beyond ``plc.queue_depth`` waiting triggers, the new id is answered at once with
verdict FAULT and its id in the image (an overrun).
"""
from __future__ import annotations

import threading
import time

from edgead.errors import PlcError
from edgead.plc import modbus_rtu as rtu
from edgead.plc import register_map as rmap
from edgead.plc.base import PartResult, PlcLink, Trigger, TriggerQueue
from edgead.plc.config import PlcConfig
from edgead.verdict import Verdict

WAIT_SLICE_MS = 50  # wait_trigger wakes this often to see a failed transport

_LIMITS = {rtu.FunctionCode.READ_COILS: rtu.MAX_READ_COILS,
           rtu.FunctionCode.READ_DISCRETE_INPUTS: rtu.MAX_READ_COILS,
           rtu.FunctionCode.READ_HOLDING_REGISTERS: rtu.MAX_READ_REGISTERS,
           rtu.FunctionCode.READ_INPUT_REGISTERS: rtu.MAX_READ_REGISTERS,
           rtu.FunctionCode.WRITE_MULTIPLE_COILS: rtu.MAX_WRITE_COILS,
           rtu.FunctionCode.WRITE_MULTIPLE_REGISTERS: rtu.MAX_WRITE_REGISTERS,
           rtu.FunctionCode.WRITE_SINGLE_COIL: 1, rtu.FunctionCode.WRITE_SINGLE_REGISTER: 1}


class ImageServerLink(PlcLink):
    """A PLC link whose PLC polls the station's register/coil image (the transport is the subclass's).

    Subclasses open their transport after ``super().__init__``, call :meth:`execute` for each request, set
    :meth:`fail` when the transport dies, and implement :meth:`close` (calling :meth:`reset_failsafe`).

    Args:
        cfg: the ``plc`` section.

    The map was checked against the image size when the config was loaded (``edgead.plc.checks``).
    """

    def __init__(self, cfg: PlcConfig):
        self._mb = cfg.modbus
        self._map = cfg.registers
        self.failsafe_verdict = cfg.failsafe_verdict
        self._registers = [0] * self._mb.image_registers
        self._coils = [0] * self._mb.image_coils
        self._lock = threading.Lock()
        self._apply(rmap.encode_failsafe(self._map))
        self._queue = TriggerQueue(cfg.queue_depth, self._answer_overrun)
        self._last_trigger_id: int | None = None
        self._writable = frozenset(cfg.registers.writable)
        self._counter = 0
        self._status = (False, False, False)
        self._beat = False
        self._error: PlcError | None = None
        self.requests_served = 0

    # --- image (under the lock) -------------------------------------------------------------------------------

    def _apply(self, writes: rmap.Writes) -> None:
        with self._lock:
            for address, value in writes.registers.items():
                self._registers[address] = value
            for address, value in writes.coils.items():
                self._coils[address] = value

    def snapshot(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A copy of ``(registers, coils)`` as the PLC would read them."""
        with self._lock:
            return tuple(self._registers), tuple(self._coils)

    @property
    def overruns(self) -> int:  # type: ignore[override]
        """Triggers answered with FAULT because the queue was full."""
        return self._queue.overruns

    def _answer_overrun(self, trigger: Trigger) -> None:
        self._write_result(PartResult(trigger.part_id, 0, Verdict.FAULT, float("nan")))

    def _write_result(self, result: PartResult) -> None:
        with self._lock:
            self._counter = (self._counter + 1) & rmap.U16_MAX
            data, valid = rmap.encode_result(result, self._counter, self._map)
        self._apply(rmap.Writes({**data.registers, **valid.registers}, {**data.coils, **valid.coils}))

    # --- requests (called by the transport) -----------------------------------------------------------------

    def fail(self, error: PlcError) -> None:
        """Record that the transport died; the next daemon call raises ``error``."""
        self._error = error
        self._queue.wake()

    def execute(self, req: rtu.Request) -> rtu.Response:
        """Answer one request from the image (a trigger write queues a trigger); counted in ``requests_served``."""
        self.requests_served += 1
        if req.function not in _LIMITS:
            return rtu.exception_response(req, rtu.ExceptionCode.ILLEGAL_FUNCTION)
        fc = rtu.FunctionCode(req.function)
        is_coil = fc in rtu.COIL_FUNCTIONS
        table = self._coils if is_coil else self._registers
        if not 1 <= req.count <= _LIMITS[fc] or (fc not in rtu.READS and len(req.values) != req.count) \
                or -1 in req.values:
            return rtu.exception_response(req, rtu.ExceptionCode.ILLEGAL_DATA_VALUE)
        if req.address + req.count > len(table):
            return rtu.exception_response(req, rtu.ExceptionCode.ILLEGAL_DATA_ADDRESS)
        if fc in rtu.READS:
            with self._lock:
                values = tuple(table[req.address:req.address + req.count])
            return rtu.Response(req.unit, fc, req.address, req.count, values)
        addresses = range(req.address, req.address + req.count)
        if is_coil or any(a not in self._writable for a in addresses):
            return rtu.exception_response(req, rtu.ExceptionCode.ILLEGAL_DATA_ADDRESS)
        self._on_write(req.address, req.values)
        return rtu.Response(req.unit, fc, req.address, req.count, req.values)

    def _on_write(self, address: int, values: tuple[int, ...]) -> None:
        """The PLC's writes (recipe, lot id, trigger: in one request or several); a new trigger id queues a trigger
        carrying the recipe and lot id the image holds at that moment."""
        trigger_at, trigger = self._map.trigger_register, None
        with self._lock:
            self._registers[address:address + len(values)] = values
            hit = trigger_at is not None and address <= trigger_at < address + len(values)
            value = self._registers[trigger_at] if hit else 0
            if value != 0 and value != self._last_trigger_id:
                self._last_trigger_id = value
                trigger = Trigger(value, time.monotonic_ns(), **rmap.trigger_extras(*self._extras()))
        if trigger is not None:
            self._queue.put(trigger)

    def _extras(self) -> tuple[int | None, tuple[int, ...] | None]:
        """The recipe register and the lot id registers as they are now (under the lock)."""
        m = self._map
        recipe = None if m.recipe_register is None else self._registers[m.recipe_register]
        lot = None if m.lot_id_register is None else \
            tuple(self._registers[m.lot_id_register:m.lot_id_register + m.lot_id_count])
        return recipe, lot

    # --- daemon side ------------------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def wait_trigger(self, timeout_ms: float) -> Trigger | None:
        """The oldest trigger the PLC wrote, acknowledged in the image; None after ``timeout_ms``.

        Raises:
            PlcError: if the serving thread stopped (port vanished, endless noise).
        """
        if self._map.trigger_register is None:
            return None
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self._check()
            remaining_ms = (deadline - time.monotonic()) * 1000
            trigger = self._queue.get(min(max(remaining_ms, 0), WAIT_SLICE_MS))
            if trigger is not None:
                break
            if remaining_ms <= 0 or self._queue.take_wake():
                self._check()
                return None
        clear, ack = rmap.encode_trigger_ack(int(trigger.part_id), self._map)
        with self._lock:
            if self._registers[self._map.trigger_register] != trigger.part_id:
                clear.registers.pop(self._map.trigger_register, None)
        self._apply(rmap.Writes({**clear.registers, **ack.registers}, clear.coils))
        return trigger

    wakeable = True

    def wake(self) -> None:
        """End a :meth:`wait_trigger` in progress (or the next one) early; any thread."""
        self._queue.wake()

    def send_result(self, result: PartResult) -> None:
        """Publish a result in the image (atomically for pollers).

        Raises:
            PlcError: if the serving thread stopped.
        """
        self._check()
        self._write_result(result)

    def set_status(self, ready: bool, busy: bool, fault: bool) -> None:
        """Set the status word (ready, busy, fault, current heartbeat bit)."""
        self._check()
        self._status = (ready, busy, fault)
        self._apply(rmap.encode_status(*self._status, self._beat, self._map))

    def heartbeat(self) -> None:
        """Toggle the heartbeat bit."""
        self._check()
        self._beat = not self._beat
        self._apply(rmap.encode_status(*self._status, self._beat, self._map))

    def reset_failsafe(self) -> None:
        """Put the image back to the fail-safe state (on close)."""
        self._apply(rmap.encode_failsafe(self._map))
