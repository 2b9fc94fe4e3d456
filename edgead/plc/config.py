"""The ``plc`` configuration section: frozen dataclasses, validated once, plus the URL query parser.

Example:
    >>> cfg = PlcConfig.from_dict({"protocol": "ascii", "url": "/dev/ttyUSB0?baud=9600"})
    >>> cfg.protocol
    <Protocol.ASCII: 'ascii'>
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

from edgead.config.loader import within as _within
from edgead.errors import ConfigError
from edgead.verdict import Verdict


class Protocol(str, Enum):
    """How the station talks to the PLC (``plc.protocol``)."""

    MODBUS_CLIENT = "modbus-client"  # the station polls and writes the PLC's registers
    MODBUS_SERVER = "modbus-server"  # the PLC polls the station's register image
    MODBUS_TCP_CLIENT = "modbus-tcp-client"  # as modbus-client, over Modbus TCP to tcp://PLC:502
    MODBUS_TCP_SERVER = "modbus-tcp-server"  # as modbus-server, listening on tcp://HOST:PORT for the PLC
    ASCII = "ascii"  # text telegrams: ``T<id>\\r\\n`` in, ``OK <id>\\r\\n`` out
    DISCRETE = "discrete"  # pulses on RTS (pass) / DTR (reject), no trigger input


class Line(str, Enum):
    """A modem-control output line used as a discrete output."""

    RTS = "rts"
    DTR = "dtr"


PARITIES = ("N", "E", "O", "M", "S")


@dataclass(frozen=True)
class SerialConfig:
    """Line settings; URL query parameters (``?baud=19200&parity=N&stopbits=1&bytesize=8``) override them."""

    baudrate: int = 19200
    parity: str = "N"
    stopbits: float = 1
    bytesize: int = 8

    def __post_init__(self) -> None:
        if self.parity not in PARITIES:
            raise ConfigError(f"plc.serial.parity: {self.parity!r} is not one of {PARITIES}")
        if self.stopbits not in (1, 1.5, 2):
            raise ConfigError(f"plc.serial.stopbits: {self.stopbits!r} is not 1, 1.5 or 2")
        if self.bytesize not in (5, 6, 7, 8):
            raise ConfigError(f"plc.serial.bytesize: {self.bytesize!r} is not 5..8")
        if not 50 <= self.baudrate <= 4_000_000:
            raise ConfigError(f"plc.serial.baudrate: {self.baudrate} is not a baud rate (50..4000000)")


@dataclass(frozen=True)
class RegisterMapConfig:
    """0-based Modbus addresses of each signal; ``None`` leaves a signal out. See ``register_map``."""

    verdict_register: int | None = 0
    result_valid_register: int | None = 1
    counter_register: int | None = 2
    part_id_register: int | None = 3
    seq_register: int | None = 4
    score_register: int | None = 5
    status_register: int | None = 6
    trigger_register: int | None = 7
    trigger_ack_register: int | None = 8
    pass_coil: int | None = 0
    result_valid_coil: int | None = 1
    recipe_register: int | None = None
    lot_id_register: int | None = None
    lot_id_chars: int = 16

    def __post_init__(self) -> None:
        if not 2 <= self.lot_id_chars <= 64 or self.lot_id_chars % 2:
            raise ConfigError(f"plc.registers.lot_id_chars: {self.lot_id_chars} must be even and 2..64",
                              hint="two characters per register")

    @property
    def lot_id_count(self) -> int:
        """Registers the lot id text takes."""
        return self.lot_id_chars // 2

    @property
    def writable(self) -> tuple[int, ...]:
        """The registers the PLC writes: trigger, recipe and the lot id text."""
        out = [a for a in (self.trigger_register, self.recipe_register) if a is not None]
        if self.lot_id_register is not None:
            out += range(self.lot_id_register, self.lot_id_register + self.lot_id_count)
        return tuple(out)


@dataclass(frozen=True)
class ModbusConfig:
    """Modbus RTU settings shared by the client and server links."""

    unit_id: int = 1
    reply_timeout_ms: int = 200  # client: "PLC did not reply within N ms"
    retries: int = 2  # client: extra attempts after a timeout or a corrupt reply
    poll_ms: int = 10  # client: trigger polling period
    image_registers: int = 32  # server: size of the register image (addresses 0..n-1)
    image_coils: int = 32
    max_garbage_bytes: int = 4096  # server: this many noise bytes in a row mark the line as noisy (logged)

    def __post_init__(self) -> None:
        _within("plc.modbus.unit_id", self.unit_id, 1, 247, "the Modbus device address")
        _within("plc.modbus.reply_timeout_ms", self.reply_timeout_ms, 1, 60_000)
        _within("plc.modbus.retries", self.retries, 0, 10)
        _within("plc.modbus.poll_ms", self.poll_ms, 1, 60_000)
        _within("plc.modbus.image_registers", self.image_registers, 1, 10_000)
        _within("plc.modbus.image_coils", self.image_coils, 1, 10_000)
        _within("plc.modbus.max_garbage_bytes", self.max_garbage_bytes, 1, 1 << 20)


@dataclass(frozen=True)
class ModbusTcpConfig:
    """Modbus TCP settings; unit id, reply timeout, retries, poll period and image size come from ``plc.modbus``."""

    max_connections: int = 4  # server: masters connected at once; one more is closed at once and counted
    idle_timeout_s: float = 60.0  # server: a connection silent this long is closed (a vanished master's slot)
    connect_timeout_ms: int = 1000  # client: one TCP connect attempt
    reconnect_min_ms: int = 100  # client: first wait after a failed connect; doubles on each failure
    reconnect_max_ms: int = 5000  # client: the longest wait between connect attempts
    give_up_s: float = 30.0  # client: PLC unreachable this long -> PlcError (the daemon exits 5); 0: never

    def __post_init__(self) -> None:
        for name in ("max_connections", "connect_timeout_ms", "reconnect_min_ms"):
            if getattr(self, name) < 1:
                raise ConfigError(f"plc.modbus_tcp.{name}: must be >= 1, got {getattr(self, name)}")
        if self.reconnect_max_ms < self.reconnect_min_ms:
            raise ConfigError(f"plc.modbus_tcp.reconnect_max_ms: {self.reconnect_max_ms} is below "
                              f"reconnect_min_ms {self.reconnect_min_ms}")
        if not self.idle_timeout_s > 0 or not self.give_up_s >= 0:
            raise ConfigError("plc.modbus_tcp: idle_timeout_s must be > 0 and give_up_s >= 0",
                              hint="give_up_s: 0 retries for ever")


TCP_PROTOCOLS = (Protocol.MODBUS_TCP_CLIENT, Protocol.MODBUS_TCP_SERVER)
MODBUS_TCP_PORT = 502


def parse_tcp_url(url: str, *, listen: bool) -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> ``(host, port)``; the port defaults to 502, a listener's host to 127.0.0.1.

    Args:
        url: e.g. ``tcp://192.168.0.10:502``, ``tcp://[::1]:5020``, ``tcp://:5020`` (listen on loopback).
        listen: True for the server's listen address (host optional), False for the PLC's address (host needed).

    Returns:
        ``(host, port)``; port 0 (listen only) picks a free port.

    Raises:
        ConfigError: naming ``plc.url``.

    Example:
        >>> parse_tcp_url("tcp://:5020", listen=True)
        ('127.0.0.1', 5020)
    """
    from urllib.parse import urlsplit

    hint = "e.g. tcp://127.0.0.1:5020 (listen address) or tcp://192.168.0.10:502 (the PLC)"
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"plc.url: {url!r} is not tcp://HOST:PORT ({exc})", hint=hint) from None
    if parts.scheme != "tcp" or parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"plc.url: {url!r} is not tcp://HOST:PORT (Modbus TCP needs a tcp:// URL)", hint=hint)
    host = parts.hostname or ""
    if not host and not listen:
        raise ConfigError(f"plc.url: {url!r} names no PLC host", hint=hint)
    if port == 0 and not listen:
        raise ConfigError(f"plc.url: {url!r}: port 0 is for a listener only", hint=hint)
    return host or "127.0.0.1", MODBUS_TCP_PORT if port is None else port


@dataclass(frozen=True)
class AsciiConfig:
    """ASCII telegrams. Templates are ``str.format`` strings with ``{part_id}``, ``{seq}`` and ``{score}``."""

    pass_template: str = "OK {part_id}\r\n"
    reject_template: str = "NG {part_id}\r\n"
    no_read_template: str = "NR {part_id}\r\n"
    fault_template: str = "FLT {part_id}\r\n"
    trigger_prefix: str = "T"
    max_line_bytes: int = 64
    max_garbage_lines: int = 32  # this many garbage lines in a row mark the line as noisy (logged)
    encoding: str = "ascii"

    def __post_init__(self) -> None:
        from edgead.plc.checks import check_ascii

        check_ascii(self)


@dataclass(frozen=True)
class DiscreteConfig:
    """Discrete outputs: a result is one pulse of ``pulse_ms`` on the pass or the reject line."""

    pass_line: Line = Line.RTS
    reject_line: Line = Line.DTR
    pulse_ms: int = 50
    gap_ms: int = 20  # minimum low time after a pulse, so back-to-back results are separate edges

    def __post_init__(self) -> None:
        if self.pass_line == self.reject_line:
            raise ConfigError(f"plc.discrete: pass_line and reject_line are both {self.pass_line.value!r}")
        _within("plc.discrete.pulse_ms", self.pulse_ms, 1, 10_000)
        _within("plc.discrete.gap_ms", self.gap_ms, 0, 10_000)


@dataclass(frozen=True)
class PlcConfig:
    """The ``plc`` section."""

    url: str = "loop://"
    protocol: Protocol = Protocol.ASCII
    failsafe_verdict: Verdict = Verdict.REJECT
    queue_depth: int = 8  # triggers queued while busy; an overrun answers FAULT for the dropped id
    serial: SerialConfig = field(default_factory=SerialConfig)
    modbus: ModbusConfig = field(default_factory=ModbusConfig)
    modbus_tcp: ModbusTcpConfig = field(default_factory=ModbusTcpConfig)
    registers: RegisterMapConfig = field(default_factory=RegisterMapConfig)
    ascii: AsciiConfig = field(default_factory=AsciiConfig)
    discrete: DiscreteConfig = field(default_factory=DiscreteConfig)

    def __post_init__(self) -> None:
        from edgead.plc.checks import check_register_map

        if self.failsafe_verdict is Verdict.ACCEPT:
            raise ConfigError("plc.failsafe_verdict: 'accept' is not fail-safe", hint="use reject (the default)")
        _within("plc.queue_depth", self.queue_depth, 1, 1024)
        if not str(self.url).strip():
            raise ConfigError("plc.url: empty", hint="e.g. /dev/ttyUSB0, or loop:// for the software twin")
        if self.protocol in TCP_PROTOCOLS:
            parse_tcp_url(self.url, listen=self.protocol is Protocol.MODBUS_TCP_SERVER)
        else:
            split_url(self.url, self.serial)  # a bad ?baud= is refused here, not when the port opens
        server = self.protocol in (Protocol.MODBUS_SERVER, Protocol.MODBUS_TCP_SERVER)
        check_register_map(self.registers, image_registers=self.modbus.image_registers if server else None,
                           image_coils=self.modbus.image_coils if server else None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PlcConfig":
        """Build the section from plain data (YAML), rejecting unknown keys.

        Args:
            data: mapping of field name to value; nested sections are mappings.

        Returns:
            The validated config.

        Raises:
            ConfigError: on an unknown key or a bad value.
        """
        from edgead.config import from_dict

        return from_dict(cls, data, "plc")




_QUERY_KEYS = {"baud": ("baudrate", int), "parity": ("parity", str.upper), "stopbits": ("stopbits", float),
               "bytesize": ("bytesize", int)}


def split_url(url: str, serial: SerialConfig) -> tuple[str, SerialConfig]:
    """Take our line-setting query parameters out of a pyserial URL.

    Other parameters (``spy://...?file=log``, ``loop://?logging=debug``) stay in the URL for pyserial.

    Args:
        url: e.g. ``/dev/ttyUSB0?baud=9600&parity=E``.
        serial: settings from the config, overridden by the query.

    Returns:
        ``(url_for_pyserial, settings)``.

    Raises:
        ConfigError: for a bad value in the query.

    Example:
        >>> split_url("/dev/ttyUSB0?baud=9600", SerialConfig())[1].baudrate
        9600
    """
    base, sep, query = url.partition("?")
    if not sep:
        return url, serial
    keep, changes = [], {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in _QUERY_KEYS:
            name, conv = _QUERY_KEYS[key]
            try:
                changes[name] = conv(value)
            except ValueError as exc:
                raise ConfigError(f"plc url {url!r}: bad {key}={value!r}") from exc
        else:
            keep.append((key, value))
    if "stopbits" in changes and changes["stopbits"] in (1.0, 2.0):
        changes["stopbits"] = int(changes["stopbits"])
    rest = "&".join(k if v == "" else urlencode({k: v}) for k, v in keep)
    return base + ("?" + rest if rest else ""), dataclasses.replace(serial, **changes)
