"""The station as Modbus master: the handshake over the PLC's registers, shared by RTU and TCP client links.

Handshake (addresses from ``register_map``): the station polls the PLC's *trigger* register every ``poll_ms``.
A non-zero value is a part id: the station clears *trigger* and ResultValid, then writes the id into *trigger
ack*, and returns the trigger. The PLC holds its next id until it reads *trigger ack* == the previous id, so the
PLC's trigger register is the queue (depth 1) and no id is lost or answered twice. After the inspection the
station writes verdict, counter, part id, sequence and score (FC16 per run of consecutive registers, FC05/FC15
for coils), then ResultValid = 1. ``set_status``/``heartbeat`` write the status word.

Subclasses provide the transport: :meth:`ModbusMasterLink._transact` sends one request and returns the reply,
the one place for timeouts and retries.
"""
from __future__ import annotations

import abc
import threading
import time

from edgead.errors import PlcError
from edgead.plc import modbus_rtu as rtu
from edgead.plc import register_map as rmap
from edgead.plc.base import PartResult, PlcLink, Trigger
from edgead.plc.config import PlcConfig


class ModbusMasterLink(PlcLink):
    """The handshake of the station as Modbus master; the transport is the subclass's.

    Args:
        cfg: the ``plc`` section.
    """

    def __init__(self, cfg: PlcConfig):
        self._mb = cfg.modbus
        self._map = cfg.registers
        self.failsafe_verdict = cfg.failsafe_verdict
        self._counter = 0
        self._status = (False, False, False)
        self._beat = False
        self._woken = threading.Event()

    @abc.abstractmethod
    def _transact(self, req: rtu.Request) -> rtu.Response:
        """Send ``req`` and return the PLC's reply (normal, not an exception).

        Raises:
            PlcError: no reply after the retries, or an exception reply.
        """

    @abc.abstractmethod
    def _close_transport(self) -> None:
        """Release the port or socket (idempotent, never raises)."""

    def _where(self) -> str:
        """The PLC as messages name it."""
        return f"PLC (unit {self._mb.unit_id})"

    def _usable(self, req: rtu.Request, resp: rtu.Response, retry_left: bool) -> bool:
        """True for a normal reply, False for BUSY with a retry left; any other exception reply raises.

        Raises:
            PlcError: the PLC refused ``req`` (names the function and the address).
        """
        if resp.exception is None:
            return True
        if resp.exception == rtu.ExceptionCode.SERVER_DEVICE_BUSY and retry_left:
            return False
        raise PlcError(f"{self._where()} refused {rtu.FunctionCode(req.function).name} at address {req.address}: "
                       f"exception {resp.exception!r}",
                       hint="check plc.registers addresses and plc.modbus.unit_id against the PLC's Modbus map")

    def _open_failsafe(self) -> None:
        """Write the fail-safe image on open; a PLC that does not take it fails the open."""
        try:
            self.apply(rmap.encode_failsafe(self._map))
        except PlcError:
            self._close_transport()
            raise

    def apply(self, writes: rmap.Writes) -> None:
        """Write registers (FC06/FC16 per run) and coils (FC05/FC15 per run) to the PLC.

        Raises:
            PlcError: if the PLC does not reply or refuses.
        """
        unit = self._mb.unit_id
        for address, values in rmap.runs(writes.registers):
            self._transact(rtu.write_register(unit, address, values[0]) if len(values) == 1
                           else rtu.write_registers(unit, address, values))
        for address, values in rmap.runs(writes.coils):
            self._transact(rtu.write_coil(unit, address, bool(values[0])) if len(values) == 1
                           else rtu.write_coils(unit, address, values))

    def read_registers(self, address: int, count: int) -> tuple[int, ...]:
        """Read holding registers from the PLC (FC03).

        Raises:
            PlcError: if the PLC does not reply or refuses.
        """
        return self._transact(rtu.read_holding_registers(self._mb.unit_id, address, count)).values

    def read_coils(self, address: int, count: int) -> tuple[int, ...]:
        """Read coils from the PLC (FC01), as 0/1.

        Raises:
            PlcError: if the PLC does not reply or refuses.
        """
        return self._transact(rtu.read_coils(self._mb.unit_id, address, count)).values

    def wait_trigger(self, timeout_ms: float) -> Trigger | None:
        """Poll the PLC's trigger register until it holds a part id, then acknowledge it.

        Returns:
            The trigger, None after ``timeout_ms`` (at once when no trigger register is mapped).

        Raises:
            PlcError: if the PLC does not reply.
        """
        address = self._map.trigger_register
        if address is None:
            return None
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            part_id = self._poll_trigger(address)
            t_ns = time.monotonic_ns()
            extras = None if part_id is None else self._read_extras()  # before the ack: the PLC may change them
            if extras is not None:
                clear, ack = rmap.encode_trigger_ack(part_id, self._map)
                self.apply(clear)
                self.apply(ack)
                return Trigger(part_id, t_ns, **extras)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._woken.wait(min(remaining, self._mb.poll_ms / 1000)):  # the poll interval, unless woken
                self._woken.clear()
                return None

    wakeable = True

    def wake(self) -> None:
        """End a :meth:`wait_trigger` in progress (or the next one) between two polls; any thread."""
        self._woken.set()

    def _read_extras(self) -> dict | None:
        """What the trigger carries: the PLC's recipe register and lot id registers (one read each, where mapped),
        as ``Trigger`` keyword arguments; None: not readable this time (the trigger stays in the PLC's register)."""
        m = self._map
        recipe = None if m.recipe_register is None else self.read_registers(m.recipe_register, 1)[0]
        lot = None if m.lot_id_register is None else self.read_registers(m.lot_id_register, m.lot_id_count)
        return rmap.trigger_extras(recipe, lot)

    def _poll_trigger(self, address: int) -> int | None:
        """One poll of the trigger register: the part id, or None (0, or nothing to read this time)."""
        return rmap.decode_trigger(self.read_registers(address, 1)[0])

    def send_result(self, result: PartResult) -> None:
        """Write the result registers, then ResultValid.

        Raises:
            PlcError: if the PLC does not reply.
        """
        self._counter = (self._counter + 1) & rmap.U16_MAX
        data, valid = rmap.encode_result(result, self._counter, self._map)
        self.apply(data)
        self.apply(valid)

    def set_status(self, ready: bool, busy: bool, fault: bool) -> None:
        """Write the status word (ready, busy, fault, current heartbeat bit)."""
        self._status = (ready, busy, fault)
        self.apply(rmap.encode_status(*self._status, self._beat, self._map))

    def heartbeat(self) -> None:
        """Toggle the heartbeat bit of the status word."""
        self._beat = not self._beat
        self.apply(rmap.encode_status(*self._status, self._beat, self._map))

    def close(self) -> None:
        """Write the fail-safe image (best effort) and release the port (idempotent)."""
        if self._is_open():
            try:
                self.apply(rmap.encode_failsafe(self._map))
            except PlcError:
                pass
        self._close_transport()

    @abc.abstractmethod
    def _is_open(self) -> bool:
        """True until :meth:`close`."""
