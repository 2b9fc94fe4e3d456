"""Modbus TCP server link: the PLC (one or several masters) polls the station's register image over TCP.

The image and its handshake are :class:`~edgead.plc.image_server.ImageServerLink`'s, the same as Modbus RTU; this
module is the transport. One thread owns the listening socket and every connection (``selectors``):

- it listens on ``plc.url`` (``tcp://HOST:PORT``; ``tcp://:PORT`` is loopback, port 0 picks a free port, see
  :attr:`ModbusTcpServerLink.address`); the default Modbus port 502 needs root or ``CAP_NET_BIND_SERVICE``;
- at most ``plc.modbus_tcp.max_connections`` masters at once: one more is accepted and closed at once (counted in
  ``connections_refused``); a connection silent for ``idle_timeout_s`` is closed, so a master that vanished without
  a FIN frees its slot; TCP keep-alive is on;
- each frame (:mod:`edgead.plc.mbap`) is answered with the same transaction id; requests for ``plc.modbus.unit_id``,
  0 or 255 are served, another unit id gets exception 0x0B (gateway target failed to respond);
- a malformed MBAP header (protocol id not 0, a length outside 2..254) closes that connection (counted in
  ``malformed_frames``); the other connections and the station carry on. A peer that vanishes mid-frame only
  loses its own connection.

Only a listening socket that fails stops the link (``PlcError`` at the daemon's next call).
"""
from __future__ import annotations

import logging
import selectors
import socket
import threading
import time

from edgead.errors import PlcError
from edgead.plc import mbap
from edgead.plc import modbus_rtu as rtu
from edgead.plc.config import PlcConfig, parse_tcp_url
from edgead.plc.image_server import ImageServerLink

log = logging.getLogger(__name__)

SELECT_MS = 50
SEND_TIMEOUT_S = 2.0
TCP_UNIT_IDS = (0, 255)  # "this server" on Modbus TCP, besides the configured unit id


def keepalive(sock: socket.socket) -> None:
    """Turn on TCP keep-alive (idle 10 s, 3 probes 5 s apart where the OS lets us set them)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class _Connection:
    def __init__(self, sock: socket.socket, peer: str):
        self.sock, self.peer = sock, peer
        self.buf = bytearray()
        self.last_rx = time.monotonic()


class ModbusTcpServerLink(ImageServerLink):
    """The station as Modbus TCP server with a register/coil image.

    Args:
        url: ``tcp://HOST:PORT`` to listen on.
        cfg: the ``plc`` section (``modbus``, ``modbus_tcp``, ``registers``).

    Raises:
        PlcError: if the address cannot be bound (in use, or a port below 1024 without the capability).
        ConfigError: for a bad URL, or a mapped address outside the image.

    Example:
        >>> cfg = PlcConfig(protocol=Protocol.MODBUS_TCP_SERVER, url="tcp://127.0.0.1:0")   # doctest: +SKIP
        >>> with open_plc(config=cfg) as link:
        ...     host, port = link.address                 # the PLC connects here
    """

    def __init__(self, url: str, cfg: PlcConfig):
        super().__init__(cfg)
        self._tcp = cfg.modbus_tcp
        host, port = parse_tcp_url(url, listen=True)
        self.url = url
        try:
            self._listener = socket.create_server((host, port), family=_family(host), backlog=8)
        except OSError as exc:
            raise PlcError(f"Modbus TCP server cannot listen on {host}:{port}: {exc}",
                           hint="another process holds the port, or a port below 1024 needs root or "
                                "CAP_NET_BIND_SERVICE (AmbientCapabilities= in the unit); or pick another port") \
                from exc
        self._listener.setblocking(False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self.connections_accepted = 0
        self.connections_refused = 0
        self.malformed_frames = 0
        self._conns: dict[socket.socket, _Connection] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"plc-modbus-tcp-server {host}:{self.address[1]}",
                                        daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        """Masters connected now."""
        return len(self._conns)

    # --- serving thread ---------------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                for key, _ in self._selector.select(SELECT_MS / 1000):
                    if key.fileobj is self._listener:
                        self._accept()
                    else:
                        self._receive(self._conns[key.fileobj])
                self._drop_idle()
        except OSError as exc:  # the listening socket itself failed
            self.fail(PlcError(f"Modbus TCP server on {self.address[0]}:{self.address[1]} failed: {exc}",
                               hint="check the network interface; systemd restarts the daemon"))
        finally:
            for conn in list(self._conns.values()):
                self._close(conn, None)

    def _accept(self) -> None:
        try:
            sock, peer = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        name = f"{peer[0]}:{peer[1]}"
        if len(self._conns) >= self._tcp.max_connections:
            self.connections_refused += 1
            log.warning("Modbus TCP: refused %s: %d connections open (plc.modbus_tcp.max_connections)", name,
                        len(self._conns))
            sock.close()
            return
        sock.settimeout(SEND_TIMEOUT_S)  # bounds sendall; recv is only called when the selector says readable
        keepalive(sock)
        self._conns[sock] = _Connection(sock, name)
        self._selector.register(sock, selectors.EVENT_READ)
        self.connections_accepted += 1
        log.info("Modbus TCP: master %s connected (%d open)", name, len(self._conns))

    def _receive(self, conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(4096)
        except OSError as exc:
            self._close(conn, f"receive failed: {exc}")
            return
        if not chunk:
            self._close(conn, "closed by the master")
            return
        conn.last_rx = time.monotonic()
        conn.buf += chunk
        try:
            while True:
                used, found = mbap.decode_request(bytes(conn.buf))
                if found is None:
                    return
                del conn.buf[:used]
                transaction_id, req = found
                conn.sock.sendall(mbap.encode_response(self._answer(req), transaction_id))
        except mbap.MbapError as exc:
            self.malformed_frames += 1
            self._close(conn, f"malformed frame ({exc})")
        except OSError as exc:
            self._close(conn, f"send failed: {exc}")

    def _answer(self, req: rtu.Request) -> rtu.Response:
        if req.unit != self._mb.unit_id and req.unit not in TCP_UNIT_IDS:
            return rtu.exception_response(req, rtu.ExceptionCode.GATEWAY_TARGET_FAILED)
        return self.execute(req)

    def _drop_idle(self) -> None:
        limit = time.monotonic() - self._tcp.idle_timeout_s
        for conn in [c for c in self._conns.values() if c.last_rx < limit]:
            self._close(conn, f"silent for {self._tcp.idle_timeout_s:g} s (plc.modbus_tcp.idle_timeout_s)")

    def _close(self, conn: _Connection, why: str | None) -> None:
        if self._conns.pop(conn.sock, None) is None:
            return
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        if why:
            log.info("Modbus TCP: master %s disconnected: %s", conn.peer, why)

    # --- daemon side ------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving, close every connection and the listener, reset the image to fail-safe (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.reset_failsafe()
        if self._listener.fileno() >= 0:
            self._selector.close()
            self._listener.close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
