"""Modbus TCP framing (MBAP): pure functions, bytes in and bytes out (no sockets).

A Modbus TCP frame is the 7-byte MBAP header followed by the same PDU that RTU carries (function code + data,
built and parsed by :mod:`edgead.plc.modbus_rtu`)::

    transaction id (u16) | protocol id (u16, always 0) | length (u16: unit + PDU bytes) | unit id (u8) | PDU

There is no CRC (TCP checks the bytes) and no resync: a TCP stream cannot be searched for the next frame, so a
malformed header (protocol id other than 0, a length outside 2..254) raises :class:`MbapError` and the link closes
that connection. ``decode_*`` return ``(consumed_bytes, frame_or_None)``; ``(0, None)`` means "wait for more".

Example:
    >>> from edgead.plc import modbus_rtu as rtu
    >>> encode_request(rtu.read_holding_registers(1, 0, 9), transaction_id=7).hex(" ")
    '00 07 00 00 00 06 01 03 00 00 00 09'
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from edgead.plc import modbus_rtu as rtu

HEADER_BYTES = 7  # transaction id, protocol id, length, unit id
PROTOCOL_ID = 0
MAX_PDU_BYTES = 253
MAX_FRAME_BYTES = HEADER_BYTES - 1 + 1 + MAX_PDU_BYTES  # 260
_HEADER = struct.Struct(">HHHB")


class MbapError(ValueError):
    """A malformed MBAP header or reply: the stream cannot be trusted any more, close the connection."""


@dataclass(frozen=True)
class Frame:
    """One Modbus TCP frame: the transaction id, the unit id and the PDU (function code + data)."""

    transaction_id: int
    unit: int
    pdu: bytes


def encode(transaction_id: int, unit: int, pdu: bytes) -> bytes:
    """An MBAP frame around ``pdu``.

    Args:
        transaction_id: 0..65535, echoed by the server.
        unit: unit id 0..255.
        pdu: function code + data, 1..253 bytes.

    Returns:
        The frame bytes.

    Raises:
        ValueError: for out-of-range fields.

    Example:
        >>> encode(1, 1, bytes.fromhex("0300000001")).hex(" ")
        '00 01 00 00 00 06 01 03 00 00 00 01'
    """
    if not 1 <= len(pdu) <= MAX_PDU_BYTES:
        raise ValueError(f"Modbus PDU must be 1..{MAX_PDU_BYTES} bytes, got {len(pdu)}")
    if not 0 <= transaction_id <= 0xFFFF or not 0 <= unit <= 0xFF:
        raise ValueError(f"MBAP transaction id {transaction_id} or unit {unit} out of range")
    return _HEADER.pack(transaction_id, PROTOCOL_ID, len(pdu) + 1, unit) + pdu


def decode(buf: bytes) -> tuple[int, Frame | None]:
    """The first frame in ``buf``.

    Args:
        buf: bytes received on one connection so far.

    Returns:
        ``(consumed, frame)``, or ``(0, None)`` while the frame is incomplete.

    Raises:
        MbapError: protocol id not 0, or a length field outside 2..254 (the connection must be closed).

    Example:
        >>> decode(bytes.fromhex("0001 0000 0006 01 0300000001"))[1].pdu.hex()
        '0300000001'
    """
    if len(buf) < HEADER_BYTES:
        return 0, None
    tid, pid, length, unit = _HEADER.unpack_from(buf)
    if pid != PROTOCOL_ID:
        raise MbapError(f"MBAP protocol id {pid} (Modbus is 0): not a Modbus TCP peer")
    if not 2 <= length <= MAX_PDU_BYTES + 1:
        raise MbapError(f"MBAP length {length} outside 2..{MAX_PDU_BYTES + 1}")
    total = HEADER_BYTES - 1 + length
    if len(buf) < total:
        return 0, None
    return total, Frame(tid, unit, bytes(buf[HEADER_BYTES:total]))


def encode_request(req: rtu.Request, transaction_id: int) -> bytes:
    """A request as a Modbus TCP frame (PDU from :func:`edgead.plc.modbus_rtu.request_pdu`)."""
    return encode(transaction_id, req.unit, rtu.request_pdu(req))


def decode_request(buf: bytes) -> tuple[int, tuple[int, rtu.Request] | None]:
    """The first request in ``buf`` (server side).

    Returns:
        ``(consumed, (transaction_id, request))`` or ``(0, None)``. A PDU that does not fit its function code is
        returned as a request the server answers with ILLEGAL_DATA_VALUE (see ``parse_request_pdu``).

    Raises:
        MbapError: for a malformed header.

    Example:
        >>> used, (tid, req) = decode_request(bytes.fromhex("0009 0000 0006 01 0600070011"))
        >>> tid, req.function, req.address, req.values
        (9, 6, 7, (17,))
    """
    used, frame = decode(buf)
    if frame is None:
        return used, None
    return used, (frame.transaction_id, rtu.parse_request_pdu(frame.unit, frame.pdu, bytes(buf[:used])))


def encode_response(resp: rtu.Response, transaction_id: int) -> bytes:
    """A response (normal or exception) as a Modbus TCP frame echoing ``transaction_id``."""
    return encode(transaction_id, resp.unit, rtu.response_pdu(resp))


def decode_response(buf: bytes, req: rtu.Request, transaction_id: int) -> tuple[int, rtu.Response | None]:
    """The reply to ``req`` sent with ``transaction_id`` (client side).

    A complete frame with another transaction id (a late reply to an earlier, timed-out request) is consumed and
    skipped: ``(n, None)``.

    Returns:
        ``(consumed, response)``; ``(n, None)``: a stale frame was dropped; ``(0, None)``: wait for more.

    Raises:
        MbapError: for a malformed header, or a reply whose function code or length does not fit ``req``.

    Example:
        >>> from edgead.plc import modbus_rtu as rtu
        >>> req = rtu.read_holding_registers(1, 0, 2)
        >>> decode_response(bytes.fromhex("0005 0000 0007 01 0304 0001 0002"), req, 5)[1].values
        (1, 2)
    """
    used, frame = decode(buf)
    if frame is None or frame.transaction_id != transaction_id:
        return used, None
    expected = rtu.response_pdu_length(frame.pdu, req)
    if expected is None or expected != len(frame.pdu):
        raise MbapError(f"reply to {rtu.FunctionCode(req.function).name} (transaction {transaction_id}) has "
                        f"function 0x{frame.pdu[0]:02x} and {len(frame.pdu)} PDU bytes")
    return used, rtu.parse_response_pdu(frame.unit, frame.pdu, req)
