from __future__ import annotations

from edgead.plc import ascii_proto as ap
from edgead.plc.base import PartResult
from edgead.plc.config import AsciiConfig
from edgead.verdict import Verdict

CFG = AsciiConfig()


def test_encode_default_templates():
    assert ap.encode_result(PartResult(17, 1, Verdict.ACCEPT, 0.1), CFG) == b"OK 17\r\n"
    assert ap.encode_result(PartResult(17, 1, Verdict.REJECT, 0.9), CFG) == b"NG 17\r\n"
    assert ap.encode_result(PartResult("A9", 1, Verdict.NO_READ, 0.9), CFG) == b"NR A9\r\n"
    assert ap.encode_result(PartResult(3, 1, Verdict.FAULT, float("nan")), CFG) == b"FLT 3\r\n"


def test_custom_template_fields():
    cfg = AsciiConfig(pass_template="P,{part_id},{seq},{score:.3f}\n")
    assert ap.encode_result(PartResult(5, 8, Verdict.ACCEPT, 0.1234), cfg) == b"P,5,8,0.123\n"


def test_decode_trigger_and_partial():
    assert ap.decode(b"T17\r\n", CFG) == (5, ap.TriggerLine(17))
    assert ap.decode(b"T17\n", CFG) == (4, ap.TriggerLine(17))
    assert ap.decode(b"TAB-3\r\n", CFG) == (7, ap.TriggerLine("AB-3"))
    assert ap.decode(b"T1", CFG) == (0, None)


def test_noise_is_garbage_never_a_trigger():
    buf = b"\x00\xffT17\r\nT18\r\n"
    used, item = ap.decode(buf, CFG)
    assert item == ap.GarbageLine(b"\x00\xffT17\r\n")
    assert ap.decode(buf[used:], CFG) == (5, ap.TriggerLine(18))
    for bad in (b"T\r\n", b"X17\r\n", b"T 17\r\n", b"T17x\x01\r\n", b"t17\r\n"):
        assert isinstance(ap.decode(bad, CFG)[1], ap.GarbageLine), bad


def test_empty_lines_are_skipped():
    assert ap.decode(b"\r\nT1\r\n", CFG) == (2, None)


def test_line_length_bound():
    cfg = AsciiConfig(max_line_bytes=8)
    used, item = ap.decode(b"x" * 9, cfg)
    assert used == 9 and isinstance(item, ap.GarbageLine)
    assert ap.decode(b"x" * 8, cfg) == (0, None)
    assert isinstance(ap.decode(b"T" + b"1" * 20 + b"\r\n", cfg)[1], ap.GarbageLine)


def test_custom_prefix():
    cfg = AsciiConfig(trigger_prefix="TRG:")
    assert ap.decode(b"TRG:42\r\n", cfg)[1] == ap.TriggerLine(42)
    assert isinstance(ap.decode(b"T42\r\n", cfg)[1], ap.GarbageLine)


def test_framer_counts_an_over_long_line_once_however_it_arrives():
    """A 3000-byte noise line at serial speed arrived in dozens of reads and was counted dozens of times."""
    noise = bytes(b % 10 + 0x41 for b in range(3000))  # no line end
    for chunk in (1, 7, 64, 65, 100, 3000):
        framer = ap.LineFramer(CFG)
        items = []
        for i in range(0, len(noise), chunk):
            items += framer.feed(noise[i:i + chunk])
            assert framer.buffered <= CFG.max_line_bytes + 3  # bounded
        items += framer.feed(b"\r\nT7\r\n")
        assert [type(x) for x in items] == [ap.GarbageLine, ap.TriggerLine], chunk
        assert items[0].raw == noise[:CFG.max_line_bytes] and items[1].part_id == 7


def test_framer_splits_lines_across_reads_and_keeps_the_short_ones():
    framer = ap.LineFramer(CFG)
    assert framer.feed(b"T1\r") == []
    assert framer.feed(b"\nT2\r\nzz\r\nT") == [ap.TriggerLine(1), ap.TriggerLine(2), ap.GarbageLine(b"zz\r\n")]
    assert framer.feed(b"3\n") == [ap.TriggerLine(3)]
    long_line = b"T" + b"9" * 100 + b"\r\n"  # over-long but terminated in one read: one garbage line
    assert [type(x) for x in framer.feed(long_line + b"T4\r\n")] == [ap.GarbageLine, ap.TriggerLine]


def test_a_trigger_carries_a_recipe_and_a_lot_id():
    cfg = AsciiConfig()
    assert ap.decode(b"T17 R2 LLOT-42\r\n", cfg) == (16, ap.TriggerLine(17, recipe=2, lot_id="LOT-42"))
    assert ap.decode(b"TA-9 Rhousing-a\r\n", cfg) == (17, ap.TriggerLine("A-9", recipe="housing-a"))
    assert ap.decode(b"T5 L7.1\n", cfg) == (8, ap.TriggerLine(5, lot_id="7.1"))


def test_a_trigger_with_a_bad_field_is_garbage_not_a_trigger():
    cfg = AsciiConfig()
    for line in (b"T17 R2 R3\r\n", b"T17 X1\r\n", b"T17 \r\n", b"T17 L\r\n", b"T17 L\xff\r\n", b"T17  R2\r\n",
                 b"T17 Lx/y\r\n"):
        used, item = ap.decode(line, cfg)
        assert used == len(line) and isinstance(item, ap.GarbageLine), line
