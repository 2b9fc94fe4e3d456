from __future__ import annotations

import math

import pytest

from edgead.plc import register_map as rmap
from edgead.plc.base import PartResult
from edgead.plc.config import RegisterMapConfig
from edgead.verdict import Verdict

CFG = RegisterMapConfig()


def test_encode_result_default_layout():
    data, valid = rmap.encode_result(PartResult(17, 3, Verdict.REJECT, 0.6234), 70000, CFG)
    assert data.registers == {0: 2, 2: 70000 & 0xFFFF, 3: 17, 4: 3, 5: 623}
    assert data.coils == {0: 0}
    assert valid.registers == {1: 1} and valid.coils == {1: 1}


def test_verdict_codes_and_pass_coil():
    for verdict, code in [(Verdict.ACCEPT, 1), (Verdict.REJECT, 2), (Verdict.NO_READ, 3), (Verdict.FAULT, 4)]:
        data, _ = rmap.encode_result(PartResult(1, 1, verdict, 0.1), 1, CFG)
        assert data.registers[0] == code
        assert data.coils[0] == (1 if verdict is Verdict.ACCEPT else 0)


def test_score_clamped_and_nan():
    assert rmap.score_to_u16(-1.0) == 0
    assert rmap.score_to_u16(1e9) == 65535
    assert rmap.score_to_u16(math.nan) == 65535
    assert rmap.score_to_u16(0.5) == 500


def test_part_id_conversion():
    assert rmap.part_id_to_u16(65537, 9) == 1
    assert rmap.part_id_to_u16("42", 9) == 42
    assert rmap.part_id_to_u16("A-7", 9) == 9


def test_unmapped_signals_are_left_out():
    cfg = RegisterMapConfig(score_register=None, pass_coil=None, result_valid_coil=None)
    data, valid = rmap.encode_result(PartResult(1, 1, Verdict.ACCEPT, 0.1), 1, cfg)
    assert 5 not in data.registers and data.coils == {} and valid.coils == {}


def test_failsafe_image_is_reject():
    out = rmap.encode_failsafe(CFG)
    assert out.registers == {0: 2, 1: 0, 6: 0} and out.coils == {0: 0, 1: 0}


def test_status_word_bits():
    assert rmap.status_word(True, False, False, False) == 0b0001
    assert rmap.status_word(False, True, True, True) == 0b1110
    assert rmap.encode_status(True, True, False, True, CFG).registers == {6: 0b1011}


def test_trigger_ack_order():
    clear, ack = rmap.encode_trigger_ack(70001, CFG)
    assert clear.registers == {7: 0, 1: 0} and clear.coils == {1: 0}
    assert ack.registers == {8: 70001 & 0xFFFF}
    assert rmap.decode_trigger(0) is None and rmap.decode_trigger(5) == 5


def test_decode_result_roundtrip():
    data, valid = rmap.encode_result(PartResult(17, 4, Verdict.NO_READ, 0.25), 9, CFG)
    regs = {**{a: 0 for a in range(9)}, **data.registers, **valid.registers}
    view = rmap.decode_result(regs, {**data.coils, **valid.coils}, CFG)
    assert view == rmap.ResultView(Verdict.NO_READ, True, 9, 17, 4, 0.25)
    assert rmap.decode_result({a: 0 for a in range(9)}, {}, CFG).verdict is None


def test_runs():
    assert rmap.runs({3: 1, 0: 5, 1: 6, 2: 7, 9: 0}) == [(0, [5, 6, 7, 1]), (9, [0])]
    assert rmap.runs({}) == []


def test_lot_id_text_in_registers():
    assert rmap.decode_text([0x4C2D, 0x3432, 0, 0]) == "L-42"  # "L-" "42", high byte first, 0-padded
    assert rmap.decode_text([0, 0]) is None
    assert rmap.encode_text("L-42", 4) == [0x4C2D, 0x3432, 0, 0]
    assert rmap.decode_text(rmap.encode_text("ABCDEFGH", 4)) == "ABCDEFGH"
    for bad in ([0x4C00, 0x4100], [0x01FF]):  # text after a 0 byte; control bytes
        with pytest.raises(ValueError, match="not printable ASCII"):
            rmap.decode_text(bad)


def test_trigger_extras_from_the_recipe_and_lot_registers():
    assert rmap.trigger_extras(0, None) == {"recipe": None}
    assert rmap.trigger_extras(3, (0x4C31, 0)) == {"recipe": 3, "lot_id": "L1"}
    assert "error" in rmap.trigger_extras(None, (0x0102,))
