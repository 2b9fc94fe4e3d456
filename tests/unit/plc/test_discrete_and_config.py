from __future__ import annotations

import pytest

from edgead.errors import ConfigError
from edgead.plc.config import DiscreteConfig, Line, PlcConfig, Protocol, SerialConfig, split_url
from edgead.plc.discrete import idle_levels, line_for, plan_pulse
from edgead.verdict import Verdict


def test_only_accept_takes_the_pass_line():
    cfg = DiscreteConfig()
    assert line_for(Verdict.ACCEPT, cfg) is Line.RTS
    for verdict in (Verdict.REJECT, Verdict.NO_READ, Verdict.FAULT):
        assert line_for(verdict, cfg) is Line.DTR
    assert plan_pulse(Verdict.ACCEPT, DiscreteConfig(pulse_ms=7, gap_ms=3)).high_ms == 7
    assert idle_levels(cfg) == {Line.RTS: False, Line.DTR: False}


def test_config_from_dict_nested_and_enums():
    cfg = PlcConfig.from_dict({"protocol": "modbus-server", "failsafe_verdict": "fault",
                               "modbus": {"unit_id": 7}, "discrete": {"pass_line": "dtr", "reject_line": "rts"}})
    assert cfg.protocol is Protocol.MODBUS_SERVER and cfg.modbus.unit_id == 7
    assert cfg.failsafe_verdict is Verdict.FAULT and cfg.discrete.pass_line is Line.DTR


def test_config_rejects_unknown_and_unsafe():
    with pytest.raises(ConfigError, match="did you mean 'protocol'"):
        PlcConfig.from_dict({"protocl": "ascii"})
    with pytest.raises(ConfigError):
        PlcConfig.from_dict({"protocol": "profinet"})
    with pytest.raises(ConfigError, match="fail-safe"):
        PlcConfig(failsafe_verdict=Verdict.ACCEPT)
    with pytest.raises(ConfigError):
        DiscreteConfig(pass_line=Line.RTS, reject_line=Line.RTS)
    with pytest.raises(ConfigError):
        SerialConfig(parity="X")


def test_split_url_query():
    url, s = split_url("/dev/ttyUSB0?baud=9600&parity=e&stopbits=2", SerialConfig())
    assert url == "/dev/ttyUSB0" and (s.baudrate, s.parity, s.stopbits) == (9600, "E", 2)
    url, s = split_url("spy://loop://?file=x.log&baud=57600", SerialConfig())
    assert url == "spy://loop://?file=x.log" and s.baudrate == 57600
    assert split_url("loop://", SerialConfig()) == ("loop://", SerialConfig())
    with pytest.raises(ConfigError):
        split_url("loop://?baud=fast", SerialConfig())


def test_the_lot_id_block_may_not_overlap_another_signal():
    with pytest.raises(ConfigError, match="lot_id_register.*trigger_register|trigger_register.*lot_id_register"):
        PlcConfig.from_dict({"protocol": "modbus-server", "registers": {  # 4..7: its last register is the trigger's
            "seq_register": None, "score_register": None, "status_register": None, "lot_id_register": 4,
            "lot_id_chars": 8}})
    with pytest.raises(ConfigError, match="lot_id_chars"):
        PlcConfig.from_dict({"protocol": "modbus-server", "registers": {"lot_id_register": 10, "lot_id_chars": 7}})
    cfg = PlcConfig.from_dict({"protocol": "modbus-server",
                               "registers": {"recipe_register": 9, "lot_id_register": 10, "lot_id_chars": 8}})
    assert cfg.registers.writable == (7, 9, 10, 11, 12, 13)
