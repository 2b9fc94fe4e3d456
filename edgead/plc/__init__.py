"""PLC I/O over serial or Ethernet: open a link by URL, the protocol chosen by ``plc.protocol``.

Every device is a URL: a pyserial URL (``/dev/ttyUSB0``, ``loop://``, ``spy://...``, ``socket://host:port``), with
optional ``?baud=19200&parity=N&stopbits=1&bytesize=8``, or ``tcp://HOST:PORT`` for Modbus TCP (the software twin
is a peer on 127.0.0.1: pymodbus, mbpoll). Protocols are pure codecs (``modbus_rtu``, ``register_map``,
``ascii_proto``, ``discrete``); links (``*_link``) only do I/O. The handshake is documented in ``edgead.plc.base``.

Example:
    >>> from edgead.plc import open_plc, PlcConfig, Protocol
    >>> with open_plc("loop://", PlcConfig(protocol=Protocol.DISCRETE)) as plc:
    ...     plc.wait_trigger(timeout_ms=10) is None
    True
"""
from __future__ import annotations

import importlib

from edgead.plc.base import PartResult, PlcLink, Trigger
from edgead.plc.config import PlcConfig, Protocol

# protocol -> (module, class): the one table; modules load only when used.
LINKS: dict[Protocol, tuple[str, str]] = {
    Protocol.MODBUS_CLIENT: ("edgead.plc.modbus_client_link", "ModbusClientLink"),
    Protocol.MODBUS_SERVER: ("edgead.plc.modbus_server_link", "ModbusServerLink"),
    Protocol.MODBUS_TCP_CLIENT: ("edgead.plc.modbus_tcp_client_link", "ModbusTcpClientLink"),
    Protocol.MODBUS_TCP_SERVER: ("edgead.plc.modbus_tcp_server_link", "ModbusTcpServerLink"),
    Protocol.ASCII: ("edgead.plc.ascii_link", "AsciiLink"),
    Protocol.DISCRETE: ("edgead.plc.discrete_link", "DiscreteLink"),
}


def open_plc(url: str | None = None, config: PlcConfig | None = None) -> PlcLink:
    """Open the PLC link for ``config.protocol`` on ``url``.

    Args:
        url: pyserial URL, or ``tcp://HOST:PORT`` for Modbus TCP; defaults to ``config.url``.
        config: the ``plc`` section; defaults to :class:`PlcConfig` ().

    Returns:
        The open link (a context manager); its outputs are already in the fail-safe state.

    Raises:
        PlcError: if the port cannot be opened (or, for the Modbus client, the PLC does not answer).
        ConfigError: if the configuration does not fit the protocol.
    """
    config = config or PlcConfig()
    module, name = LINKS[config.protocol]
    cls = getattr(importlib.import_module(module), name)
    return cls(url or config.url, config)


__all__ = ["LINKS", "PartResult", "PlcConfig", "PlcLink", "Protocol", "Trigger", "open_plc"]
