"""Modbus TCP (MBAP) framing against hand-written frames: the PDU is the RTU codec's, the header ours."""
from __future__ import annotations

import pytest

from edgead.errors import ConfigError
from edgead.plc import mbap
from edgead.plc import modbus_rtu as rtu
from edgead.plc.config import PlcConfig, Protocol, parse_tcp_url

H = bytes.fromhex

REQUESTS = [
    (rtu.read_coils(0x11, 0x13, 0x25), "0001 0000 0006 11 01 0013 0025"),
    (rtu.read_holding_registers(0x01, 0x00, 9), "0001 0000 0006 01 03 0000 0009"),
    (rtu.write_coil(0xFF, 0xAC, True), "0001 0000 0006 ff 05 00AC FF00"),
    (rtu.write_register(0x01, 7, 42), "0001 0000 0006 01 06 0007 002A"),
    (rtu.write_coils(0x11, 0x13, [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]), "0001 0000 0009 11 0F 0013 000A 02 CD01"),
    (rtu.write_registers(0x11, 1, [0x000A, 0x0102]), "0001 0000 000B 11 10 0001 0002 04 000A 0102"),
]


@pytest.mark.parametrize("req,frame", REQUESTS)
def test_encode_request(req, frame):
    assert mbap.encode_request(req, transaction_id=1) == H(frame)


@pytest.mark.parametrize("req,frame", REQUESTS)
def test_decode_request_roundtrip(req, frame):
    used, (tid, got) = mbap.decode_request(H(frame) + H("00 01"))  # the start of the next frame stays
    assert used == len(H(frame)) and tid == 1
    assert (got.unit, got.function, got.address, got.count, got.values) == \
        (req.unit, req.function, req.address, req.count, req.values)


def test_incomplete_frames_wait():
    assert mbap.decode_request(H("0001 0000 00")) == (0, None)
    assert mbap.decode_request(H("0001 0000 0006 01 03 00")) == (0, None)


@pytest.mark.parametrize("header", ["0001 0001 0006 01", "0001 0000 0001 01", "0001 0000 00ff 01"])
def test_malformed_header_raises(header):
    with pytest.raises(mbap.MbapError):
        mbap.decode_request(H(header) + H("03 0000 0001"))


def test_malformed_pdus_are_requests_the_server_refuses():
    _, (_, short) = mbap.decode_request(H("0001 0000 0004 01 03 0000"))
    assert short.count == 0  # answered ILLEGAL_DATA_VALUE
    _, (_, bad_count) = mbap.decode_request(H("0001 0000 0009 01 10 0007 0002 02 0001"))  # 2 registers, 2 bytes
    assert bad_count.values == ()
    _, (_, unknown) = mbap.decode_request(H("0001 0000 0002 01 2b"))
    assert unknown.function == 0x2B and unknown.count == 0


def test_responses():
    assert mbap.encode_response(rtu.Response(1, 3, 0, 2, (1, 2)), 0x1234) == H("1234 0000 0007 01 03 04 0001 0002")
    exc = rtu.exception_response(rtu.write_register(1, 0, 1), rtu.ExceptionCode.ILLEGAL_DATA_ADDRESS)
    assert mbap.encode_response(exc, 5) == H("0005 0000 0003 01 86 02")
    assert mbap.encode_response(rtu.Response(1, 6, 7, 1, (42,)), 2) == H("0002 0000 0006 01 06 0007 002a")


def test_decode_response_skips_a_stale_transaction_and_checks_the_reply():
    req = rtu.read_holding_registers(1, 0, 2)
    stale = H("0004 0000 0007 01 03 04 0009 0009")
    fresh = H("0005 0000 0007 01 03 04 0001 0002")
    used, resp = mbap.decode_response(stale + fresh, req, 5)
    assert (used, resp) == (len(stale), None)
    assert mbap.decode_response(fresh, req, 5)[1].values == (1, 2)
    assert mbap.decode_response(H("0005 0000 0003 01 83 02"), req, 5)[1].exception == \
        rtu.ExceptionCode.ILLEGAL_DATA_ADDRESS
    with pytest.raises(mbap.MbapError, match="function 0x06"):
        mbap.decode_response(H("0005 0000 0006 01 06 0000 0001"), req, 5)
    with pytest.raises(mbap.MbapError, match="5 PDU bytes"):
        mbap.decode_response(H("0005 0000 0006 01 03 04 0001 00"), req, 5)


def test_encode_checks_ranges():
    with pytest.raises(ValueError):
        mbap.encode(70000, 1, H("03"))
    with pytest.raises(ValueError):
        mbap.encode(1, 1, b"")


@pytest.mark.parametrize("url,listen,expected", [
    ("tcp://:5020", True, ("127.0.0.1", 5020)),
    ("tcp://0.0.0.0:502", True, ("0.0.0.0", 502)),
    ("tcp://192.168.0.10", False, ("192.168.0.10", 502)),
    ("tcp://[::1]:5020", False, ("::1", 5020)),
    ("tcp://127.0.0.1:0", True, ("127.0.0.1", 0)),
])
def test_parse_tcp_url(url, listen, expected):
    assert parse_tcp_url(url, listen=listen) == expected


@pytest.mark.parametrize("url,listen", [("loop://", True), ("tcp://:502", False), ("tcp://h:99999", False),
                                        ("tcp://h:0", False), ("tcp://h:502/x", False), ("/dev/ttyUSB0", True)])
def test_bad_tcp_urls_are_config_errors_naming_plc_url(url, listen):
    with pytest.raises(ConfigError, match="plc.url"):
        parse_tcp_url(url, listen=listen)


def test_plc_config_checks_the_url_of_a_tcp_protocol():
    with pytest.raises(ConfigError, match="plc.url"):
        PlcConfig.from_dict({"protocol": "modbus-tcp-server"})  # the default url is a serial one
    with pytest.raises(ConfigError, match="reconnect_max_ms"):
        PlcConfig.from_dict({"protocol": "modbus-tcp-client", "url": "tcp://10.0.0.2",
                             "modbus_tcp": {"reconnect_min_ms": 500, "reconnect_max_ms": 100}})
    assert PlcConfig.from_dict({"protocol": "modbus-tcp-client", "url": "tcp://10.0.0.2"}).protocol is \
        Protocol.MODBUS_TCP_CLIENT
