"""Modbus RTU codec against hand-written frames from the Modbus specification examples (unit 0x11)."""
from __future__ import annotations

import pytest

from edgead.plc import modbus_rtu as rtu

H = bytes.fromhex

REQUESTS = [
    (rtu.read_coils(0x11, 0x13, 0x25), "11 01 0013 0025 0E84"),
    (rtu.read_discrete_inputs(0x11, 0xC4, 0x16), "11 02 00C4 0016 BAA9"),
    (rtu.read_holding_registers(0x11, 0x6B, 3), "11 03 006B 0003 7687"),
    (rtu.read_input_registers(0x11, 0x08, 1), "11 04 0008 0001 B298"),
    (rtu.write_coil(0x11, 0xAC, True), "11 05 00AC FF00 4E8B"),
    (rtu.write_register(0x11, 1, 3), "11 06 0001 0003 9A9B"),
    (rtu.write_coils(0x11, 0x13, [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]), "11 0F 0013 000A 02 CD01 BF0B"),
    (rtu.write_registers(0x11, 1, [0x000A, 0x0102]), "11 10 0001 0002 04 000A 0102 C6F0"),
]


def test_crc_of_known_frame():
    assert rtu.crc16(H("01 03 0000 000A")) == 0xCDC5
    assert rtu.with_crc(H("0A8102")) == H("0A8102B053")


@pytest.mark.parametrize("req,frame", REQUESTS)
def test_encode_request_matches_spec(req, frame):
    assert rtu.encode_request(req) == H(frame)


@pytest.mark.parametrize("req,frame", REQUESTS)
def test_decode_request_roundtrip(req, frame):
    used, got = rtu.decode_request(H(frame))
    assert used == len(H(frame))
    assert (got.unit, got.function, got.address, got.count, got.values) == \
        (req.unit, req.function, req.address, req.count, req.values)


def test_decode_request_waits_for_partial_frame():
    assert rtu.decode_request(H("11 10 0001 0002 04 000A")) == (0, None)
    assert rtu.decode_request(H("11")) == (0, None)


def test_decode_request_resyncs_after_noise():
    noise = H("FF 00 13 10 00")  # 0x10 looks like the start of an FC16 frame, never completes
    used, req = rtu.decode_request(noise + H("11 06 0001 0003 9A9B"))
    assert used == len(noise) + 8 and req.function == rtu.FunctionCode.WRITE_SINGLE_REGISTER and req.values == (3,)


def test_decode_request_drops_bad_crc():
    used, req = rtu.decode_request(H("11 06 0001 0003 9A9C"))
    assert req is None and used > 0


def test_two_frames_in_one_buffer():
    buf = H("11 06 0001 0003 9A9B") + H("11 03 006B 0003 7687")
    used, first = rtu.decode_request(buf)
    used2, second = rtu.decode_request(buf[used:])
    assert first.function == 6 and second.function == 3 and used + used2 == len(buf)


def test_unknown_function_found_by_crc():
    frame = rtu.with_crc(H("11 2B 0E 01 00"))
    used, req = rtu.decode_request(frame)
    assert used == len(frame) and req.function == 0x2B


@pytest.mark.parametrize("resp,frame", [
    (rtu.Response(0x11, 1, values=(1, 0, 1, 1, 0, 0, 1, 1) + (1, 1, 0, 1, 0, 1, 1, 0) + (0, 1, 0, 0, 1, 1, 0, 1)
                  + (0, 1, 1, 1, 0, 0, 0, 0) + (1, 1, 0, 1, 1, 0, 0, 0)), "11 01 05 CD6BB20E1B 45E6"),
    (rtu.Response(0x11, 2, values=(0, 0, 1, 1, 0, 1, 0, 1) + (1, 1, 0, 1, 1, 0, 1, 1) + (1, 0, 1, 0, 1, 1)),
     "11 02 03 ACDB35 2018"),
    (rtu.Response(0x11, 3, values=(0xAE41, 0x5652, 0x4340)), "11 03 06 AE41 5652 4340 49AD"),
    (rtu.Response(0x11, 4, values=(0x000A,)), "11 04 02 000A F8F4"),
    (rtu.Response(0x11, 5, 0xAC, 1, (1,)), "11 05 00AC FF00 4E8B"),
    (rtu.Response(0x11, 6, 1, 1, (3,)), "11 06 0001 0003 9A9B"),
    (rtu.Response(0x11, 15, 0x13, 10), "11 0F 0013 000A 2699"),
    (rtu.Response(0x11, 16, 1, 2), "11 10 0001 0002 1298"),
    (rtu.Response(0x0A, 1, exception=rtu.ExceptionCode.ILLEGAL_DATA_ADDRESS), "0A 81 02 B053"),
])
def test_encode_response_matches_spec(resp, frame):
    assert rtu.encode_response(resp) == H(frame)


def test_decode_read_registers_response():
    req = rtu.read_holding_registers(0x11, 0x6B, 3)
    used, resp = rtu.decode_response(H("11 03 06 AE41 5652 4340 49AD"), req)
    assert used == 11 and resp.values == (0xAE41, 0x5652, 0x4340) and resp.exception is None


def test_decode_input_reads():
    got = rtu.decode_response(H("11 04 02 000A F8F4"), rtu.read_input_registers(0x11, 8, 1))[1]
    assert (got.function, got.values) == (rtu.FunctionCode.READ_INPUT_REGISTERS, (10,))
    got = rtu.decode_response(H("11 02 03 ACDB35 2018"), rtu.read_discrete_inputs(0x11, 0xC4, 22))[1]
    assert got.values[:8] == (0, 0, 1, 1, 0, 1, 0, 1) and len(got.values) == 22


def test_decode_read_coils_truncates_to_count():
    used, resp = rtu.decode_response(H("11 01 05 CD6BB20E1B 45E6"), rtu.read_coils(0x11, 0x13, 0x25))
    assert len(resp.values) == 0x25 and resp.values[:8] == (1, 0, 1, 1, 0, 0, 1, 1)


def test_decode_write_responses():
    assert rtu.decode_response(H("11 10 0001 0002 1298"), rtu.write_registers(0x11, 1, [1, 2]))[1].count == 2
    assert rtu.decode_response(H("11 05 00AC FF00 4E8B"), rtu.write_coil(0x11, 0xAC, True))[1].values == (1,)


def test_decode_exception_response():
    used, resp = rtu.decode_response(H("0A 81 02 B053"), rtu.read_coils(0x0A, 0, 1))
    assert used == 5 and resp.exception is rtu.ExceptionCode.ILLEGAL_DATA_ADDRESS and resp.function == 1


def test_decode_response_partial_and_noise():
    req = rtu.write_register(0x11, 1, 3)
    assert rtu.decode_response(H("11 06 0001"), req) == (0, None)
    used, resp = rtu.decode_response(H("00 FF 11 06") + H("11 06 0001 0003 9A9B"), req)
    assert used == 12 and resp.values == (3,)
    # a reply from another unit is noise for this request
    assert rtu.decode_response(rtu.with_crc(H("12 06 0001 0003")), req)[1] is None


def test_malformed_coil_value_is_flagged():
    used, req = rtu.decode_request(rtu.with_crc(H("11 05 00AC 1234")))
    assert req.values == (-1,)


def test_register_value_range_checked():
    with pytest.raises(ValueError):
        rtu.write_register(1, 0, 70000)


def test_frame_gap():
    assert rtu.frame_gap_s(115200) == pytest.approx(1.75e-3)
    assert rtu.frame_gap_s(9600) == pytest.approx(3.5 * 11 / 9600)
