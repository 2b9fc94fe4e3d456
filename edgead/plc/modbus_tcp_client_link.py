"""Modbus TCP client link: the station is the Modbus master of a PLC reached at ``tcp://HOST:PORT``.

The handshake is :class:`~edgead.plc.modbus_master.ModbusMasterLink`'s, the same as Modbus RTU; this module is
the transport, with the timing rules in one place, :meth:`ModbusTcpClientLink._transact`:

- each request is an MBAP frame (:mod:`edgead.plc.mbap`) with its own transaction id; a late reply to an earlier
  request is skipped by its id;
- the reply must come within ``plc.modbus.reply_timeout_ms``; a timeout is retried ``retries`` times, then
  ``PlcError`` names the request; an exception reply raises at once (BUSY is retried);
- **connection loss**: a send or receive that fails closes the socket and the next attempt reconnects at once;
  a connect that fails waits ``reconnect_min_ms``, doubling up to ``reconnect_max_ms``, before the next attempt.
  While the PLC is unreachable, ``wait_trigger`` returns None at its deadline (the daemon's loop keeps running)
  and status writes are kept and written again after the reconnect; a result that cannot be delivered raises
  ``PlcError`` (the PLC's window treats it as reject). After ``give_up_s`` without a connection every call raises
  ``PlcError``, the daemon exits 5 and systemd restarts it.
- on open the fail-safe image must be written, or the open fails (as with RTU).
"""
from __future__ import annotations

import logging
import socket
import time

from edgead.errors import PlcError
from edgead.plc import mbap
from edgead.plc import modbus_rtu as rtu
from edgead.plc import register_map as rmap
from edgead.plc.config import PlcConfig, parse_tcp_url
from edgead.plc.modbus_master import ModbusMasterLink
from edgead.plc.modbus_tcp_server_link import keepalive

log = logging.getLogger(__name__)


class LinkDown(PlcError):
    """The PLC cannot be reached right now (connection lost or refused); the link keeps reconnecting."""


class ModbusTcpClientLink(ModbusMasterLink):
    """The station as Modbus TCP master.

    Args:
        url: ``tcp://HOST:PORT`` of the PLC (port 502 when omitted).
        cfg: the ``plc`` section (``modbus``, ``modbus_tcp``, ``registers``).

    Raises:
        PlcError: if the PLC cannot be reached or does not take the fail-safe image on open.
        ConfigError: for a bad URL.
    """

    def __init__(self, url: str, cfg: PlcConfig):
        super().__init__(cfg)
        self._tcp = cfg.modbus_tcp
        self.host, self.port = parse_tcp_url(url, listen=False)
        self._sock: socket.socket | None = None
        self._closed = False
        self._tid = 0
        self._backoff_s = self._tcp.reconnect_min_ms / 1000
        self._next_try = 0.0
        self._down_since: float | None = None
        self._last_error = "not connected yet"
        self._restoring = False
        self.reconnects = 0
        self.connects = 0
        self._open_failsafe()

    @property
    def connected(self) -> bool:
        """True while a connection to the PLC is open."""
        return self._sock is not None

    # --- transport --------------------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"PLC at {self.host}:{self.port} (unit {self._mb.unit_id})"

    def _connection(self) -> socket.socket:
        """The open socket, connecting first when the backoff allows it.

        Raises:
            LinkDown: not connected, and this attempt failed or is not due yet.
            PlcError: unreachable for longer than ``give_up_s``, or the link was closed.
        """
        if self._sock is not None:
            return self._sock
        if self._closed:
            raise PlcError(f"{self._where()}: the link is closed", hint="open the link again")
        now = time.monotonic()
        if self._down_since is not None and self._tcp.give_up_s and now - self._down_since > self._tcp.give_up_s:
            raise PlcError(f"{self._where()} unreachable for {now - self._down_since:.0f} s "
                           f"(plc.modbus_tcp.give_up_s {self._tcp.give_up_s:g}): {self._last_error}",
                           hint="check the network, the PLC's IP address and that its Modbus TCP server is on")
        if now < self._next_try:
            raise LinkDown(f"{self._where()} unreachable, next connect in {(self._next_try - now) * 1000:.0f} ms: "
                           f"{self._last_error}")
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._tcp.connect_timeout_ms / 1000)
        except OSError as exc:
            self._last_error = f"connect failed: {exc}"
            self._down_since = self._down_since or now
            self._next_try = now + self._backoff_s
            self._backoff_s = min(2 * self._backoff_s, self._tcp.reconnect_max_ms / 1000)
            raise LinkDown(f"{self._where()}: {self._last_error}",
                           hint="check the network, the PLC's IP address and port") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keepalive(sock)
        self._sock, self._down_since = sock, None
        self._backoff_s = self._tcp.reconnect_min_ms / 1000
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
            log.info("Modbus TCP: reconnected to %s:%d", self.host, self.port)
            self._restore()
        return sock

    def _restore(self) -> None:
        """After a reconnect, write the status word again (the PLC may have restarted meanwhile)."""
        if self._restoring:
            return
        self._restoring = True
        try:
            self.apply(rmap.encode_status(*self._status, self._beat, self._map))
        finally:
            self._restoring = False

    def _drop(self, why: str) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            log.warning("Modbus TCP: connection to %s:%d lost: %s", self.host, self.port, why)
        self._last_error = why
        self._down_since = self._down_since or time.monotonic()
        self._next_try = 0.0  # the first reconnect is at once; failed connects back off

    def _transact(self, req: rtu.Request) -> rtu.Response:
        """Send ``req`` and return the PLC's reply: the one place for timeouts, retries and reconnects."""
        name = rtu.FunctionCode(req.function).name
        attempts = 1 + self._mb.retries
        why, lost = "no reply", False
        for attempt in range(attempts):
            try:
                sock = self._connection()
            except LinkDown as exc:
                why, lost = exc.message, True
                continue
            self._tid = (self._tid + 1) & 0xFFFF
            try:
                sock.sendall(mbap.encode_request(req, self._tid))
                resp = self._read_reply(sock, req, self._tid)
            except (OSError, mbap.MbapError) as exc:
                self._drop(f"{type(exc).__name__}: {exc}")
                why, lost = f"connection lost ({exc})", True
                continue
            if resp is None:
                why, lost = f"no reply within {self._mb.reply_timeout_ms} ms", False
                continue
            if self._usable(req, resp, retry_left=attempt + 1 < attempts):
                return resp
            why = "device busy"
        error = LinkDown if lost else PlcError
        raise error(f"{self._where()} did not answer {name} at address {req.address}, {attempts} attempts ({why})",
                    hint="check the network, the PLC's address and its Modbus TCP server")

    def _read_reply(self, sock: socket.socket, req: rtu.Request, tid: int) -> rtu.Response | None:
        buf = bytearray()
        deadline = time.monotonic() + self._mb.reply_timeout_ms / 1000
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(512)
            except socket.timeout:
                return None
            if not chunk:
                raise ConnectionResetError("closed by the PLC")
            buf += chunk
            while (found := mbap.decode_response(bytes(buf), req, tid))[0]:
                del buf[:found[0]]
                if found[1] is not None:
                    return found[1]
        return None

    # --- riding out an outage ---------------------------------------------------------------------------------

    def _poll_trigger(self, address: int) -> int | None:
        try:
            return super()._poll_trigger(address)
        except LinkDown:
            return None  # wait_trigger sleeps poll_ms and polls (reconnects) again until its deadline

    def _read_extras(self) -> dict | None:
        try:
            return super()._read_extras()
        except LinkDown:
            return None  # not acknowledged: the trigger is read again after the reconnect

    def set_status(self, ready: bool, busy: bool, fault: bool) -> None:
        """Write the status word; while the PLC is unreachable it is kept and written after the reconnect."""
        try:
            super().set_status(ready, busy, fault)
        except LinkDown:
            pass

    def heartbeat(self) -> None:
        """Toggle the heartbeat bit; while the PLC is unreachable the toggle is kept for the reconnect."""
        try:
            super().heartbeat()
        except LinkDown:
            pass

    def _is_open(self) -> bool:
        return not self._closed and self._sock is not None

    def _close_transport(self) -> None:
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None
