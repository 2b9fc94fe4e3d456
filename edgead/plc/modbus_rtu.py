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
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


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


def encode_request(req: Request) -> bytes:
    """Encode a request as an RTU frame with CRC.

    Args:
        req: the request (built with the constructors above).

    Returns:
        The frame bytes.

    Raises:
        ValueError: for an unsupported function code or out-of-range fields.
    """
    head = struct.pack(">BBH", req.unit, req.function, _check_u16("address", req.address))
    _check_u16("count", req.count)
    if req.function in READS:
        return with_crc(head + struct.pack(">H", req.count))
    if req.function == FunctionCode.WRITE_SINGLE_COIL:
        return with_crc(head + struct.pack(">H", COIL_ON if req.values[0] else 0))
    if req.function == FunctionCode.WRITE_SINGLE_REGISTER:
        return with_crc(head + struct.pack(">H", req.values[0]))
    if req.function == FunctionCode.WRITE_MULTIPLE_COILS:
        data = _pack_bits(req.values)
        return with_crc(head + struct.pack(">HB", req.count, len(data)) + data)
    if req.function == FunctionCode.WRITE_MULTIPLE_REGISTERS:
        data = struct.pack(f">{req.count}H", *req.values)
        return with_crc(head + struct.pack(">HB", req.count, len(data)) + data)
    raise ValueError(f"Modbus function code {req.function} is not supported by the codec")


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
        for n in range(4, min(avail, MAX_ADU_BYTES) + 1):
            if _crc_ok(buf[start:start + n]):
                return n
        return 0 if avail < MAX_ADU_BYTES else -1
    if avail < length:
        return 0
    return length if _crc_ok(buf[start:start + length]) else -1


def _parse_request(frame: bytes) -> Request:
    unit, function = frame[0], frame[1]
    if function in READS:
        address, count = struct.unpack(">HH", frame[2:6])
        return Request(unit, function, address, count, (), frame)
    if function == FunctionCode.WRITE_SINGLE_COIL:
        address, value = struct.unpack(">HH", frame[2:6])
        return Request(unit, function, address, 1, (1 if value == COIL_ON else 0,) if value in (0, COIL_ON)
                       else (-1,), frame)
    if function == FunctionCode.WRITE_SINGLE_REGISTER:
        address, value = struct.unpack(">HH", frame[2:6])
        return Request(unit, function, address, 1, (value,), frame)
    if function in MULTI_WRITES:
        address, count, nbytes = struct.unpack(">HHB", frame[2:7])
        data = frame[7:7 + nbytes]
        if function == FunctionCode.WRITE_MULTIPLE_COILS:
            values = _unpack_bits(data, count) if nbytes == (count + 7) // 8 else ()
        else:
            values = struct.unpack(f">{nbytes // 2}H", data[: nbytes // 2 * 2]) if nbytes == 2 * count else ()
        return Request(unit, function, address, count, tuple(values), frame)
    return Request(unit, function, raw=frame)


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


def encode_response(resp: Response) -> bytes:
    """Encode a server response (normal or exception) as an RTU frame.

    Args:
        resp: for reads, ``values`` are the read values; for writes, ``address``/``count``/``values`` echo the
            request.

    Returns:
        The frame bytes.

    Raises:
        ValueError: for an unsupported function code.
    """
    if resp.exception is not None:
        return with_crc(bytes((resp.unit, (resp.function | 0x80) & 0xFF, int(resp.exception))))
    head = bytes((resp.unit, resp.function))
    if resp.function in BIT_READS:
        data = _pack_bits(resp.values)
        return with_crc(head + bytes((len(data),)) + data)
    if resp.function in WORD_READS:
        data = struct.pack(f">{len(resp.values)}H", *resp.values)
        return with_crc(head + bytes((len(data),)) + data)
    if resp.function == FunctionCode.WRITE_SINGLE_COIL:
        return with_crc(head + struct.pack(">HH", resp.address, COIL_ON if resp.values[0] else 0))
    if resp.function == FunctionCode.WRITE_SINGLE_REGISTER:
        return with_crc(head + struct.pack(">HH", resp.address, resp.values[0]))
    if resp.function in MULTI_WRITES:
        return with_crc(head + struct.pack(">HH", resp.address, resp.count))
    raise ValueError(f"Modbus function code {resp.function} is not supported by the codec")


# --- client side ------------------------------------------------------------------------------------------------

def _response_length(buf: bytes, start: int, req: Request) -> int | None:
    function = buf[start + 1]
    if function == (req.function | 0x80):
        return 5
    if function != req.function:
        return -1
    if function in READS:
        return None if len(buf) - start < 3 else 5 + buf[start + 2]
    return 8


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


def _parse_response(frame: bytes, req: Request) -> Response:
    unit, function = frame[0], frame[1]
    if function & 0x80:
        code = frame[2]
        return Response(unit, req.function, exception=ExceptionCode(code) if code in
                        ExceptionCode._value2member_map_ else code)
    if function in BIT_READS:
        data = frame[3:-2]
        return Response(unit, function, req.address, req.count, _unpack_bits(data, min(req.count, 8 * len(data))))
    if function in WORD_READS:
        data = frame[3:-2]
        return Response(unit, function, req.address, len(data) // 2, struct.unpack(f">{len(data) // 2}H", data))
    address, value = struct.unpack(">HH", frame[2:6])
    if function == FunctionCode.WRITE_SINGLE_COIL:
        return Response(unit, function, address, 1, (1 if value == COIL_ON else 0,))
    if function == FunctionCode.WRITE_SINGLE_REGISTER:
        return Response(unit, function, address, 1, (value,))
    return Response(unit, function, address, value)


def frame_gap_s(baudrate: int) -> float:
    """The RTU inter-frame silence (3.5 characters of 11 bits; fixed 1.75 ms above 19200 Bd).

    Example:
        >>> round(frame_gap_s(9600) * 1000, 2)
        4.01
    """
    return 1.75e-3 if baudrate > 19200 else 3.5 * 11 / baudrate
