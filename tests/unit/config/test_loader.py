"""Strict config conversion: unknown keys with suggestions, types, enums, units, overrides."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import pytest

from edgead.config import from_dict, load_yaml, merge_overrides, parse_set
from edgead.errors import ConfigError


class Mode(str, Enum):
    A = "a"
    B = "b"


@dataclass(frozen=True)
class Inner:
    timeout_ms: int = 100
    ratio: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    mode: Mode = Mode.A
    inner: Inner = field(default_factory=Inner)
    items: tuple[Inner, ...] = ()
    path: Path | None = None
    flag: bool = False


def test_defaults_and_nested():
    cfg = from_dict(Outer, {"inner": {"timeout_ms": 5}, "items": [{"ratio": 1}], "mode": "b"})
    assert cfg.inner.timeout_ms == 5 and cfg.items[0].ratio == 1.0 and cfg.mode is Mode.B


def test_unknown_key_suggests():
    with pytest.raises(ConfigError, match=r"inner.timeout_sm: unknown key") as e:
        from_dict(Outer, {"inner": {"timeout_sm": 5}})
    assert "did you mean 'timeout_ms'" in str(e.value)


def test_wrong_unit_and_type():
    with pytest.raises(ConfigError, match=r"inner.timeout_ms: expected an integer, got '5ms'") as e:
        from_dict(Outer, {"inner": {"timeout_ms": "5ms"}})
    assert "milliseconds" in str(e.value)
    with pytest.raises(ConfigError, match="flag: expected true or false"):
        from_dict(Outer, {"flag": "yes please"})


def test_enum_error_lists_values():
    with pytest.raises(ConfigError, match=r"mode: 'c' is not one of 'a', 'b'"):
        from_dict(Outer, {"mode": "c"})


def test_relative_paths_resolve_against_base(tmp_path):
    assert from_dict(Outer, {"path": "ref.png"}, base_dir=tmp_path).path == tmp_path / "ref.png"


def test_overrides_win(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("inner:\n  timeout_ms: 7\nname: file\n")
    merged = merge_overrides(load_yaml(f), parse_set(["inner.timeout_ms=9", "flag=true"]))
    cfg = from_dict(Outer, merged)
    assert (cfg.inner.timeout_ms, cfg.name, cfg.flag) == (9, "file", True)


def test_bad_yaml_names_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_yaml(f)
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_set(["novalue"])
