"""Modbus RTU client link: the station is the Modbus master and the PLC a server (slave).

Handshake (addresses from ``register_map``): the station polls the PLC's *trigger* register every ``poll_ms``.
A non-zero value is a part id: the station clears *trigger* and ResultValid, then writes the id into *trigger
ack*, and returns the trigger. The PLC holds its next id until it reads *trigger ack* == the previous id, so the
PLC's trigger register is the queue (depth 1) and no id is lost or answered twice. After the inspection the
station writes verdict, counter, part id, sequence and score (FC16 per run of consecutive registers, FC05/FC15
for coils), then ResultValid = 1. ``set_status``/``heartbeat`` write the status word.

Timing: one place, :meth:`ModbusClientLink._transact`: a request is sent after the 3.5-character silence, the
reply must come within ``reply_timeout_ms``; a timeout or a corrupt reply is retried ``retries`` times, then
``PlcError`` says which request got no reply. An exception reply raises at once (BUSY is retried).
"""
from __future__ import annotations

import time

from edgead.errors import PlcError
from edgead.plc import modbus_rtu as rtu
from edgead.plc import register_map as rmap
from edgead.plc.base import PartResult, PlcLink, Trigger
from edgead.plc.config import PlcConfig
from edgead.plc.serial_port import SerialPort


class ModbusClientLink(PlcLink):
    """The station as Modbus RTU master.

    Args:
        url: pyserial URL of the port.
        cfg: the ``plc`` section.

    Raises:
        PlcError: if the port cannot be opened or the PLC does not take the fail-safe image on open.
    """

    def __init__(self, url: str, cfg: PlcConfig):
        self._mb = cfg.modbus
        self._map = cfg.registers
        self.failsafe_verdict = cfg.failsafe_verdict
        self._port = SerialPort(url, cfg.serial)
        self._gap_s = rtu.frame_gap_s(self._port.settings.baudrate)
        self._last_io = 0.0
        self._counter = 0
        self._status = (False, False, False)
        self._beat = False
        try:
            self.apply(rmap.encode_failsafe(self._map))
        except PlcError:
            self._port.close()
            raise

    def _transact(self, req: rtu.Request) -> rtu.Response:
        """Send ``req`` and return the PLC's reply: the one place for timeouts and retries."""
        frame = rtu.encode_request(req)
        name = rtu.FunctionCode(req.function).name
        attempts = 1 + self._mb.retries
        why = "no reply"
        for attempt in range(attempts):
            wait = self._last_io + self._gap_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._port.reset_input()
            self._port.write(frame)
            buf = bytearray()
            deadline = time.monotonic() + self._mb.reply_timeout_ms / 1000
            while (remaining := deadline - time.monotonic()) > 0:
                chunk = self._port.read_some(rtu.MAX_ADU_BYTES, remaining * 1000)
                if not chunk:
                    continue
                self._last_io = time.monotonic()
                buf += chunk
                used, resp = rtu.decode_response(bytes(buf), req)
                del buf[:used]
                if resp is None:
                    continue
                if resp.exception is None:
                    return resp
                if resp.exception == rtu.ExceptionCode.SERVER_DEVICE_BUSY and attempt + 1 < attempts:
                    why = "device busy"
                    break
                raise PlcError(f"PLC on {self._port.url!r} (unit {req.unit}) refused {name} at address "
                               f"{req.address}: exception {resp.exception!r}",
                               hint="check plc.registers addresses against the PLC's Modbus map")
            else:
                why = "no reply" if not buf else f"{len(buf)} bytes but no valid frame"
            self._last_io = time.monotonic()
        raise PlcError(f"PLC on {self._port.url!r} (unit {req.unit}) did not reply to {name} at address "
                       f"{req.address} within {self._mb.reply_timeout_ms} ms, {attempts} attempts ({why})",
                       hint=f"check wiring, unit id {self._mb.unit_id} and line settings {self._port.settings}")

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
            part_id = rmap.decode_trigger(self.read_registers(address, 1)[0])
            if part_id is not None:
                t_ns = time.monotonic_ns()
                clear, ack = rmap.encode_trigger_ack(part_id, self._map)
                self.apply(clear)
                self.apply(ack)
                return Trigger(part_id, t_ns)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(remaining, self._mb.poll_ms / 1000))

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
        if self._port.is_open:
            try:
                self.apply(rmap.encode_failsafe(self._map))
            except PlcError:
                pass
        self._port.close()
