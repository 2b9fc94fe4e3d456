"""Modbus RTU client link: the station is the Modbus master and the PLC a server (slave).

The handshake is :class:`~edgead.plc.modbus_master.ModbusMasterLink`'s (shared with Modbus TCP); this module is the
serial transport.

Timing: one place, :meth:`ModbusClientLink._transact`: a request is sent after the 3.5-character silence, the
reply must come within ``reply_timeout_ms``; a timeout or a corrupt reply is retried ``retries`` times, then
``PlcError`` says which request got no reply. An exception reply raises at once (BUSY is retried).
"""
from __future__ import annotations

import time

from edgead.errors import PlcError
from edgead.plc import modbus_rtu as rtu
from edgead.plc.config import PlcConfig
from edgead.plc.modbus_master import ModbusMasterLink
from edgead.plc.serial_port import SerialPort


class ModbusClientLink(ModbusMasterLink):
    """The station as Modbus RTU master.

    Args:
        url: pyserial URL of the port.
        cfg: the ``plc`` section.

    Raises:
        PlcError: if the port cannot be opened or the PLC does not take the fail-safe image on open.
    """

    def __init__(self, url: str, cfg: PlcConfig):
        super().__init__(cfg)
        self._port = SerialPort(url, cfg.serial)
        self._gap_s = rtu.frame_gap_s(self._port.settings.baudrate)
        self._last_io = 0.0
        self._open_failsafe()

    def _is_open(self) -> bool:
        return self._port.is_open

    def _close_transport(self) -> None:
        self._port.close()

    def _where(self) -> str:
        return f"PLC on {self._port.url!r} (unit {self._mb.unit_id})"

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
                if self._usable(req, resp, retry_left=attempt + 1 < attempts):
                    return resp
                why = "device busy"
                break
            else:
                why = "no reply" if not buf else f"{len(buf)} bytes but no valid frame"
            self._last_io = time.monotonic()
        raise PlcError(f"PLC on {self._port.url!r} (unit {req.unit}) did not reply to {name} at address "
                       f"{req.address} within {self._mb.reply_timeout_ms} ms, {attempts} attempts ({why})",
                       hint=f"check wiring, unit id {self._mb.unit_id} and line settings {self._port.settings}")
