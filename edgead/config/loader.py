"""Generic, strict conversion of plain dicts into frozen dataclasses.

Every section is a frozen dataclass whose fields have defaults; a mapping is converted field by field:
unknown keys are rejected with a "did you mean", enums are parsed from their values, nested dataclasses and
tuples of them are recursed into, and every error names the full key (``plc.register_map.verdict``).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Cam:
    ...     url: str = "folder://x"
    ...     timeout_ms: int = 2000
    >>> from_dict(Cam, {"timeout_ms": 500}).timeout_ms
    500
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import errno
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from edgead.errors import ConfigError, short_path

_NONE = type(None)


def read_text_file(path: str | os.PathLike, what: str = "config file") -> str:
    """A small UTF-8 text file; every way it can fail is a :class:`ConfigError` naming ``what`` and the path.

    Raises:
        ConfigError: missing, a directory, unreadable, a path too long for the file system, binary, or not UTF-8.
    """
    p = Path(path)
    shown = short_path(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {shown} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {shown} is a directory, not a file",
                          hint=f"give the YAML file itself, e.g. {p / 'station.yaml'}") from None
    except PermissionError:
        raise ConfigError(f"{what} {shown}: permission denied", hint="run as a user that may read it") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ConfigError(f"{what} path is too long for the file system: {shown}",
                              hint="each name must be at most 255 bytes and the whole path 4096") from None
        raise ConfigError(f"{what} {shown} cannot be read: {exc.strerror or exc}") from None
    if b"\0" in raw[:8192]:
        raise ConfigError(f"{what} {shown} is a binary file, not YAML text", hint="check the path") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {shown} is not UTF-8 text (byte {exc.start} of {len(raw)})",
                          hint="save it as UTF-8; a binary file is not a config") from None


def load_yaml(path: str | os.PathLike, what: str = "config file") -> dict:
    """Read a YAML mapping; :class:`ConfigError` names the file (and the line on a syntax error).

    Args:
        path: the file.
        what: what the file is, for messages (``config file``, ``inventory``...).
    """
    p = Path(path)
    text = read_text_file(p, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {short_path(p)} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {short_path(p)}: the top level must be a mapping of sections, "
                          f"got {type(data).__name__}")
    return data


def parse_set(pairs: list[str]) -> dict:
    """``["a.b=1", "c=x"]`` -> nested dict; values parsed as YAML scalars (no eval)."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. camera.timeout_ms=500")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r}: {part} is both a value and a section")
        node[parts[-1]] = yaml.safe_load(value)
    return out


def merge_overrides(base: dict, overrides: Mapping) -> dict:
    """Deep-merge ``overrides`` into a copy of ``base`` (the rightmost source wins)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_overrides(dict(out[key]), value)
        else:
            out[key] = value
    return out


def from_dict(cls: type, data: Any, path: str = "", base_dir: Path | None = None):
    """Build the frozen dataclass ``cls`` from ``data`` (a mapping), strictly.

    Args:
        cls: a dataclass type whose fields all have defaults (or are required).
        data: the mapping (None means all defaults).
        path: the key prefix for messages.
        base_dir: relative ``Path`` fields are resolved against it (the config file's folder).

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: unknown key (with a suggestion), wrong type, bad enum value, missing required key.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"{_join(path, key)}: unknown key", hint=hint)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = convert(hints[name], data[name], _join(path, name), base_dir)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, name)}: required key is missing")
        elif base_dir is not None:  # defaults are relative to the config file too, not to the working directory
            default = _resolved_default(f, hints[name], _join(path, name), base_dir)
            if default is not dataclasses.MISSING:
                kwargs[name] = default
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ checks
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc


def _resolved_default(f: dataclasses.Field, tp: Any, path: str, base_dir: Path) -> Any:
    """The default of a field absent from the file, with relative paths resolved against ``base_dir`` (MISSING:
    keep the dataclass default as it is)."""
    if dataclasses.is_dataclass(tp) and f.default_factory is tp:
        return from_dict(tp, {}, path, base_dir)  # a whole section left out: its path defaults resolve too
    if isinstance(f.default, Path) and not f.default.is_absolute():
        return base_dir / f.default
    return dataclasses.MISSING


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def convert(tp: Any, value: Any, path: str, base_dir: Path | None = None) -> Any:
    """Convert one value to the annotated type ``tp`` (see :func:`from_dict`)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(types, "UnionType", ())):
        if value is None and _NONE in args:
            return None
        errors = []
        for arg in (a for a in args if a is not _NONE):
            try:
                return convert(arg, value, path, base_dir)
            except ConfigError as exc:
                errors.append(exc.message)
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{path}: {value!r} fits none of its forms: "
                          + "; ".join(e.removeprefix(f"{path}: ") for e in errors))
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path, base_dir)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(convert(item, v, f"{path}[{i}]", base_dir) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): convert(vt, v, f"{path}.{k}", base_dir) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise ConfigError(f"{path}: {value!r} is not one of {allowed}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}", hint=_unit_hint(path))
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}", hint=_unit_hint(path))
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}", hint=_unit_hint(path))
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    if tp is Path:
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"{path}: expected a path, got {value!r}")
        p = Path(os.path.expanduser(str(value)))
        return p if p.is_absolute() or base_dir is None else (base_dir / p)
    raise ConfigError(f"{path}: unsupported type {tp!r} (internal)")


def _unit_hint(path: str) -> str | None:
    for suffix, unit in (("_ms", "milliseconds"), ("_us", "microseconds"), ("_s", "seconds"),
                         ("_px", "pixels"), ("_mb", "megabytes"), ("_db", "decibels"), ("_hz", "hertz")):
        if path.endswith(suffix):
            return f"the key's unit is in its name: a plain number of {unit}, without a unit suffix"
    return None


def within(key: str, value: int, lo: int, hi: int, what: str = "") -> None:
    """Refuse ``value`` outside ``lo..hi``, naming the config ``key`` (and what it is, when given)."""
    if not lo <= value <= hi:
        raise ConfigError(f"{key}: {value} is outside {lo}..{hi}" + (f" ({what})" if what else ""))


def parse_listen(text: str, key: str = "observe.metrics_listen") -> tuple[str, int]:
    """``"127.0.0.1:9818"`` -> (host, port); :class:`ConfigError` naming ``key`` otherwise."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{key}: {text!r} is not HOST:PORT", hint="e.g. 127.0.0.1:9818")
    return host or "127.0.0.1", int(port)
