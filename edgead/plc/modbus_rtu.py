"""Modbus RTU codec: pure functions, bytes in and bytes out (no I/O, no pymodbus).

An RTU frame (ADU) is ``unit (1 byte) + function (1) + data (0..252) + CRC16 (2, little-endian)``; the CRC is
CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF). Supported function codes: 01 read coils, 02 read discrete
inputs, 03 read holding registers, 04 read input registers, 05 write single coil, 06 write single register,
15 write multiple coils, 16 write multiple registers.
Addresses are 0-based protocol addresses (register "40001" is address 0).

Client side: build a :class:`Request`, :func:`encode_request` it, and :func:`decode_response` the reply.
Server side: :func:`decode_request` finds frames in a byte stream and :func:`encode_response` builds the answer.
Both ``decode_*`` functions return ``(consumed_bytes, frame_or_None)``: ``(0, None)`` means "wait for more bytes";
``(n, None)`` with ``n > 0`` means "drop n bytes of noise". Resync rule: a frame is only taken when its CRC is
valid; bytes in front of the first CRC-valid frame are dropped.

Example:
    >>> encode_request(read_holding_registers(0x11, 0x6B, 3)).hex(" ")
    '11 03 00 6b 00 03 76 87'
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Sequence

MAX_ADU_BYTES = 256
MAX_READ_REGISTERS = 125
MAX_READ_COILS = 2000
MAX_WRITE_REGISTERS = 123
MAX_WRITE_COILS = 1968
COIL_ON = 0xFF00


class FunctionCode(IntEnum):
    """The Modbus function codes the codec speaks."""

    READ_COILS = 0x01
    READ_DISCRETE_INPUTS = 0x02
    READ_HOLDING_REGISTERS = 0x03
    READ_INPUT_REGISTERS = 0x04
    WRITE_SINGLE_COIL = 0x05
    WRITE_SINGLE_REGISTER = 0x06
    WRITE_MULTIPLE_COILS = 0x0F
    WRITE_MULTIPLE_REGISTERS = 0x10


class ExceptionCode(IntEnum):
    """Modbus exception codes (the byte after ``function | 0x80``)."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SERVER_DEVICE_BUSY = 0x06
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_FAILED = 0x0B


BIT_READS = (FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS)
WORD_READS = (FunctionCode.READ_HOLDING_REGISTERS, FunctionCode.READ_INPUT_REGISTERS)
READS = BIT_READS + WORD_READS
SINGLE_WRITES = (FunctionCode.WRITE_SINGLE_COIL, FunctionCode.WRITE_SINGLE_REGISTER)
MULTI_WRITES = (FunctionCode.WRITE_MULTIPLE_COILS, FunctionCode.WRITE_MULTIPLE_REGISTERS)
COIL_FUNCTIONS = BIT_READS + (FunctionCode.WRITE_SINGLE_COIL, FunctionCode.WRITE_MULTIPLE_COILS)


@dataclass(frozen=True)
class Request:
    """One request. ``values`` are the written values (coils as 0/1), empty for reads.

    ``function`` is an int so that a server can represent (and refuse) function codes it does not support.
    """

    unit: int
    function: int
    address: int = 0
    count: int = 0
    values: tuple[int, ...] = ()
    raw: bytes = b""


@dataclass(frozen=True)
class Response:
    """One response. ``values`` are the read values (coils as 0/1) or the echoed written values.

    ``exception`` is set for an exception reply (``function`` is then the original code, without 0x80).
    """

    unit: int
    function: int
    address: int = 0
    count: int = 0
    values: tuple[int, ...] = ()
    exception: ExceptionCode | int | None = None


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of ``data`` (poly 0xA001 reflected, init 0xFFFF).

    Args:
        data: the frame without its CRC.

    Returns:
        The CRC as an int; on the wire it goes low byte first.

    Example:
        >>> hex(crc16(bytes.fromhex("110300 6b0003".replace(" ", ""))))
        '0x8776'
    """
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def _crc_table() -> tuple[int, ...]:
    table = []
    for value in range(256):
        crc = value
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()  # one byte per step instead of one bit: noise on the bus is scanned at every offset


def with_crc(body: bytes) -> bytes:
    """Append the little-endian CRC to ``body``."""
    return body + struct.pack("<H", crc16(body))


def _crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == struct.unpack("<H", frame[-2:])[0]


def _pack_bits(bits: Sequence[int]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _unpack_bits(data: bytes, count: int) -> tuple[int, ...]:
    return tuple((data[i // 8] >> (i % 8)) & 1 for i in range(count))


def _check_u16(name: str, value: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"Modbus {name} must be 0..65535, got {value}")
    return value


# --- request constructors (client side) -----------------------------------------------------------------------

def read_coils(unit: int, address: int, count: int) -> Request:
    """FC01 request for ``count`` coils from ``address``."""
    return Request(unit, FunctionCode.READ_COILS, address, count)


def read_discrete_inputs(unit: int, address: int, count: int) -> Request:
    """FC02 request for ``count`` discrete inputs from ``address``."""
    return Request(unit, FunctionCode.READ_DISCRETE_INPUTS, address, count)


def read_holding_registers(unit: int, address: int, count: int) -> Request:
    """FC03 request for ``count`` holding registers from ``address``."""
    return Request(unit, FunctionCode.READ_HOLDING_REGISTERS, address, count)


def read_input_registers(unit: int, address: int, count: int) -> Request:
    """FC04 request for ``count`` input registers from ``address``."""
    return Request(unit, FunctionCode.READ_INPUT_REGISTERS, address, count)


def write_coil(unit: int, address: int, on: bool) -> Request:
    """FC05 request setting one coil."""
    return Request(unit, FunctionCode.WRITE_SINGLE_COIL, address, 1, (1 if on else 0,))


def write_register(unit: int, address: int, value: int) -> Request:
    """FC06 request writing one register."""
    return Request(unit, FunctionCode.WRITE_SINGLE_REGISTER, address, 1, (_check_u16("value", value),))


def write_coils(unit: int, address: int, values: Sequence[int]) -> Request:
    """FC15 request writing consecutive coils (truthy = on)."""
    return Request(unit, FunctionCode.WRITE_MULTIPLE_COILS, address, len(values), tuple(1 if v else 0 for v in values))


def write_registers(unit: int, address: int, values: Sequence[int]) -> Request:
    """FC16 request writing consecutive registers."""
    return Request(unit, FunctionCode.WRITE_MULTIPLE_REGISTERS, address, len(values),
                   tuple(_check_u16("value", v) for v in values))


def request_pdu(req: Request) -> bytes:
    """The PDU of a request (function code + data), without unit id or framing; shared by RTU and TCP (MBAP).

    Args:
        req: the request (built with the constructors above).

    Returns:
        The PDU bytes.

    Raises:
        ValueError: for an unsupported function code or out-of-range fields.

    Example:
        >>> request_pdu(write_register(1, 1, 3)).hex(" ")
        '06 00 01 00 03'
    """
    head = struct.pack(">BH", req.function, _check_u16("address", req.address))
    _check_u16("count", req.count)
    if req.function in READS:
        return head + struct.pack(">H", req.count)
    if req.function == FunctionCode.WRITE_SINGLE_COIL:
        return head + struct.pack(">H", COIL_ON if req.values[0] else 0)
    if req.function == FunctionCode.WRITE_SINGLE_REGISTER:
        return head + struct.pack(">H", req.values[0])
    if req.function == FunctionCode.WRITE_MULTIPLE_COILS:
        data = _pack_bits(req.values)
        return head + struct.pack(">HB", req.count, len(data)) + data
    if req.function == FunctionCode.WRITE_MULTIPLE_REGISTERS:
        data = struct.pack(f">{req.count}H", *req.values)
        return head + struct.pack(">HB", req.count, len(data)) + data
    raise ValueError(f"Modbus function code {req.function} is not supported by the codec")


def encode_request(req: Request) -> bytes:
    """Encode a request as an RTU frame with CRC.

    Args:
        req: the request (built with the constructors above).

    Returns:
        The frame bytes.

    Raises:
        ValueError: for an unsupported function code or out-of-range fields.
    """
    return with_crc(bytes((req.unit,)) + request_pdu(req))


# --- server side ------------------------------------------------------------------------------------------------

def _request_length(buf: bytes, start: int) -> int | None:
    """Expected ADU length of the request at ``start``, or None when more bytes are needed to tell."""
    function = buf[start + 1]
    if function in READS or function in SINGLE_WRITES:
        return 8
    if function in MULTI_WRITES:
        return None if len(buf) - start < 7 else 9 + buf[start + 6]
    return -1  # unknown function: found by CRC scan


def _frame_at(buf: bytes, start: int) -> int:
    """Length of a CRC-valid request at ``start``; 0 = need more bytes; -1 = not a frame."""
    avail = len(buf) - start
    if avail < 2:
        return 0
    if buf[start] > 247:
        return -1
    length = _request_length(buf, start)
    if length is None:
        return 0
    if length == -1:  # unknown function code: any CRC-valid length is a frame (the server answers 01)
        crc = crc16(buf[start:start + 2])  # the CRC of buf[start:start + n - 2], extended by one byte per length
        for n in range(4, min(avail, MAX_ADU_BYTES) + 1):
            if n > 4:
                crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ buf[start + n - 3]) & 0xFF]
            if crc == buf[start + n - 2] | (buf[start + n - 1] << 8):
                return n
        return 0 if avail < MAX_ADU_BYTES else -1
    if avail < length:
        return 0
    return length if _crc_ok(buf[start:start + length]) else -1


_PDU_LENGTH = {fc: 5 for fc in READS + SINGLE_WRITES}  # fixed-size PDUs


def parse_request_pdu(unit: int, pdu: bytes, raw: bytes = b"") -> Request:
    """A request from its PDU (function code + data); shared by RTU and TCP (MBAP).

    A PDU whose length does not fit its function code, a byte count that does not match the count, or a coil value
    other than 0x0000/0xFF00 gives a request the server answers with ILLEGAL_DATA_VALUE: ``count == 0`` and
    ``values == ()``, or ``values == (-1,)``. An unknown function code gives a request with only ``unit``,
    ``function`` and ``raw`` (answered ILLEGAL_FUNCTION).

    Args:
        unit: the unit id from the frame.
        pdu: function code and data (at least one byte).
        raw: the whole frame, kept for logs and noise accounting.

    Returns:
        The parsed :class:`Request`.

    Example:
        >>> parse_request_pdu(1, bytes.fromhex("0300000004")).count
        4
    """
    function = pdu[0]
    if function in _PDU_LENGTH and len(pdu) != _PDU_LENGTH[function]:
        return Request(unit, function, raw=raw)
    if function in READS:
        address, count = struct.unpack(">HH", pdu[1:5])
        return Request(unit, function, address, count, (), raw)
    if function == FunctionCode.WRITE_SINGLE_COIL:
        address, value = struct.unpack(">HH", pdu[1:5])
        return Request(unit, function, address, 1, (1 if value == COIL_ON else 0,) if value in (0, COIL_ON)
                       else (-1,), raw)
    if function == FunctionCode.WRITE_SINGLE_REGISTER:
        address, value = struct.unpack(">HH", pdu[1:5])
        return Request(unit, function, address, 1, (value,), raw)
    if function in MULTI_WRITES:
        if len(pdu) < 6 or len(pdu) != 6 + pdu[5]:
            return Request(unit, function, raw=raw)
        address, count, nbytes = struct.unpack(">HHB", pdu[1:6])
        data = pdu[6:6 + nbytes]
        if function == FunctionCode.WRITE_MULTIPLE_COILS:
            values = _unpack_bits(data, count) if nbytes == (count + 7) // 8 else ()
        else:
            values = struct.unpack(f">{nbytes // 2}H", data[: nbytes // 2 * 2]) if nbytes == 2 * count else ()
        return Request(unit, function, address, count, tuple(values), raw)
    return Request(unit, function, raw=raw)


def _parse_request(frame: bytes) -> Request:
    return parse_request_pdu(frame[0], frame[1:-2], frame)


def decode_request(buf: bytes) -> tuple[int, Request | None]:
    """Find the next CRC-valid request in a byte stream (server side).

    Args:
        buf: bytes received so far (may hold noise, partial frames, several frames).

    Returns:
        ``(consumed, request)``: the request and the bytes it and any noise before it used; ``(n, None)`` with
        ``n > 0``: drop ``n`` noise bytes; ``(0, None)``: wait for more bytes. A request with a malformed body
        (e.g. byte count not matching the count, coil value not 0x0000/0xFF00) is returned with
        ``values == ()`` or ``(-1,)`` so the server can answer ILLEGAL_DATA_VALUE.

    Example:
        >>> decode_request(bytes.fromhex("ff00") + bytes.fromhex("1106000100039a9b"))[0]
        10
    """
    start = 0
    while start < len(buf):
        n = _frame_at(buf, start)
        if n > 0:
            return start + n, _parse_request(buf[start:start + n])
        if n == 0:  # incomplete here; a complete frame further on means this start was noise
            for later in range(start + 1, len(buf) - 3):
                if _frame_at(buf, later) > 0:
                    start = later
                    break
            else:
                return start, None
            continue
        start += 1
    return start, None


def exception_response(req: Request, code: ExceptionCode) -> Response:
    """The exception reply to ``req``."""
    return Response(req.unit, req.function, exception=code)


def response_pdu(resp: Response) -> bytes:
    """The PDU of a response (normal or exception), without unit id or framing; shared by RTU and TCP.

    Args:
        resp: for reads, ``values`` are the read values; for writes, ``address``/``count``/``values`` echo the
            request.

    Returns:
        The PDU bytes.

    Raises:
        ValueError: for an unsupported function code.

    Example:
        >>> response_pdu(Response(1, 0x2B, exception=ExceptionCode.ILLEGAL_FUNCTION)).hex(" ")
        'ab 01'
    """
    if resp.exception is not None:
        return bytes(((resp.function | 0x80) & 0xFF, int(resp.exception)))
    head = bytes((resp.function,))
    if resp.function in BIT_READS:
        data = _pack_bits(resp.values)
        return head + bytes((len(data),)) + data
    if resp.function in WORD_READS:
        data = struct.pack(f">{len(resp.values)}H", *resp.values)
        return head + bytes((len(data),)) + data
    if resp.function == FunctionCode.WRITE_SINGLE_COIL:
        return head + struct.pack(">HH", resp.address, COIL_ON if resp.values[0] else 0)
    if resp.function == FunctionCode.WRITE_SINGLE_REGISTER:
        return head + struct.pack(">HH", resp.address, resp.values[0])
    if resp.function in MULTI_WRITES:
        return head + struct.pack(">HH", resp.address, resp.count)
    raise ValueError(f"Modbus function code {resp.function} is not supported by the codec")


def encode_response(resp: Response) -> bytes:
    """Encode a server response (normal or exception) as an RTU frame (see :func:`response_pdu`).

    Raises:
        ValueError: for an unsupported function code.
    """
    return with_crc(bytes((resp.unit,)) + response_pdu(resp))


# --- client side ------------------------------------------------------------------------------------------------

def _response_length(buf: bytes, start: int, req: Request) -> int | None:
    length = response_pdu_length(buf[start + 1:start + 3], req)
    return length if length is None or length < 0 else length + 3


def decode_response(buf: bytes, req: Request) -> tuple[int, Response | None]:
    """Find the reply to ``req`` in a byte stream (client side).

    Only a CRC-valid frame from ``req.unit`` with ``req.function`` (or its exception) counts; anything before it
    is noise.

    Args:
        buf: bytes received since the request was sent.
        req: the request that was sent (gives unit, function and, for coils, the count).

    Returns:
        ``(consumed, response)``; ``(n, None)``: drop ``n`` noise bytes; ``(0, None)``: wait for more.

    Example:
        >>> decode_response(bytes.fromhex("0a8102b053"), read_coils(10, 0, 1))[1].exception
        <ExceptionCode.ILLEGAL_DATA_ADDRESS: 2>
    """
    start = 0
    while start < len(buf):
        if len(buf) - start < 2:
            return start, None
        length = -1 if buf[start] != req.unit else _response_length(buf, start, req)
        if length is None or (length > 0 and len(buf) - start < length):
            return start, None
        if length > 0 and _crc_ok(buf[start:start + length]):
            return start + length, _parse_response(buf[start:start + length], req)
        start += 1
    return start, None


def parse_response_pdu(unit: int, pdu: bytes, req: Request) -> Response:
    """The reply to ``req`` from its PDU; shared by RTU and TCP. The caller has checked the length.

    Args:
        unit: the unit id from the frame.
        pdu: function code and data.
        req: the request it answers (gives the function, the address and, for coils, the count).

    Returns:
        The :class:`Response` (``exception`` set for an exception reply).
    """
    function = pdu[0]
    if function & 0x80:
        code = pdu[1]
        return Response(unit, req.function, exception=ExceptionCode(code) if code in
                        ExceptionCode._value2member_map_ else code)
    if function in BIT_READS:
        data = pdu[2:]
        return Response(unit, function, req.address, req.count, _unpack_bits(data, min(req.count, 8 * len(data))))
    if function in WORD_READS:
        data = pdu[2:]
        return Response(unit, function, req.address, len(data) // 2, struct.unpack(f">{len(data) // 2}H", data))
    address, value = struct.unpack(">HH", pdu[1:5])
    if function == FunctionCode.WRITE_SINGLE_COIL:
        return Response(unit, function, address, 1, (1 if value == COIL_ON else 0,))
    if function == FunctionCode.WRITE_SINGLE_REGISTER:
        return Response(unit, function, address, 1, (value,))
    return Response(unit, function, address, value)


def response_pdu_length(pdu: bytes, req: Request) -> int | None:
    """Expected PDU length of the reply to ``req``: None while too short to tell, -1 if it is not that reply."""
    if not pdu:
        return None
    function = pdu[0]
    if function == (req.function | 0x80):
        return 2
    if function != req.function:
        return -1
    if function in READS:
        return None if len(pdu) < 2 else 2 + pdu[1]
    return 5


def _parse_response(frame: bytes, req: Request) -> Response:
    return parse_response_pdu(frame[0], frame[1:-2], req)


def frame_gap_s(baudrate: int) -> float:
    """The RTU inter-frame silence (3.5 characters of 11 bits; fixed 1.75 ms above 19200 Bd).

    Example:
        >>> round(frame_gap_s(9600) * 1000, 2)
        4.01
    """
    return 1.75e-3 if baudrate > 19200 else 3.5 * 11 / baudrate
