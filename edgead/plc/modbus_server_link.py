"""Modbus RTU server link: the station is a Modbus server (slave) and the PLC polls its register image.

The image and its handshake are :class:`~edgead.plc.image_server.ImageServerLink`'s (shared with Modbus TCP);
this module is the serial transport.

A background thread owns the port: it finds requests in the byte stream (``modbus_rtu.decode_request``; noise is
dropped until a CRC-valid frame, and a silence of 50 ms drops a partial frame), answers those for
``modbus.unit_id`` from the image, ignores other unit ids (other devices on the bus), applies broadcasts (unit 0)
without replying, and answers bad requests with exception replies (01 unsupported function, 02 address outside
the image or not writable, 03 malformed value or count). The image reads with FC01/FC03 (coils, holding
registers) and, for PLCs that poll inputs, with FC02/FC04: discrete inputs and input registers are read-only views
of the same coil and register image, at the same addresses.

Handshake (addresses from ``register_map``): the PLC writes a new non-zero part id into *trigger* (FC06 or FC16;
the only writable register). Each write of a new id queues a trigger at once, even while the station is busy; a
write of the same id again is ignored, so a PLC that rewrites its trigger every scan is safe. When the daemon
takes a trigger, *trigger* is cleared (if it still holds that id), ResultValid goes to 0 and *trigger ack* = id.
A result updates verdict, counter, part id, sequence, score and then ResultValid under one lock, so a poll never
sees half a result. Beyond ``plc.queue_depth`` waiting triggers, the new id is answered at once with verdict
FAULT and its id in the image (an overrun). The PLC should wait for *trigger ack* before writing the next id.

A vanished port stops the thread; the next daemon call raises ``PlcError``. Noise never does: the buffer holds at
most one frame's worth of bytes, and ``max_garbage_bytes`` noise bytes in a row are logged as an error and reported
in :attr:`ModbusServerLink.line_problem` until the next valid request.
"""
from __future__ import annotations

import logging
import threading

from edgead.errors import PlcError
from edgead.plc import modbus_rtu as rtu
from edgead.plc.config import PlcConfig
from edgead.plc.image_server import ImageServerLink
from edgead.plc.serial_port import SerialPort

log = logging.getLogger(__name__)
SILENCE_MS = 50


class ModbusServerLink(ImageServerLink):
    """The station as Modbus RTU server with a register/coil image.

    Args:
        url: pyserial URL of the port.
        cfg: the ``plc`` section.

    Raises:
        PlcError: if the port cannot be opened.
    """

    def __init__(self, url: str, cfg: PlcConfig):
        super().__init__(cfg)
        self.noise_bytes = 0
        self.line_problem: str | None = None
        self._port = SerialPort(url, cfg.serial)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"plc-modbus-server {url}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buf = bytearray()
        noise_run = 0
        try:
            while not self._stop.is_set():
                chunk = self._port.read_some(rtu.MAX_ADU_BYTES, SILENCE_MS)
                if not chunk:
                    noise_run += len(buf)  # silence ends any partial frame
                    self.noise_bytes += len(buf)
                    buf.clear()
                buf += chunk
                while buf:
                    used, req = rtu.decode_request(bytes(buf))
                    if used == 0:
                        break
                    noise = used - (len(req.raw) if req is not None else 0)
                    noise_run = noise_run + noise if req is None else 0
                    self.noise_bytes += noise
                    del buf[:used]
                    if req is not None:
                        self.line_problem = None
                        reply = self._handle(req)
                        if reply:
                            self._port.write(reply)
                if noise_run > self._mb.max_garbage_bytes and self.line_problem is None:
                    self.line_problem = (f"PLC port {self._port.url!r}: {noise_run} bytes without a valid Modbus "
                                         f"frame; check baud rate/parity ({self._port.settings}) and that the PLC "
                                         "speaks Modbus RTU")
                    log.error("%s", self.line_problem)
        except PlcError as exc:
            self.fail(exc)

    def _handle(self, req: rtu.Request) -> bytes | None:
        if req.unit not in (self._mb.unit_id, 0):
            return None
        resp = self.execute(req)
        return None if req.unit == 0 else rtu.encode_response(resp)

    def close(self) -> None:
        """Stop serving, reset the image to fail-safe, release the port (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.reset_failsafe()
        self._port.close()
