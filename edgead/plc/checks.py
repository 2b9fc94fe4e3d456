"""Validation of the ``plc`` section that needs more than one key: the register map and the ASCII telegrams.

Run when the section is built (``PlcConfig.__post_init__``), so ``edgead check`` and ``edgead run`` refuse the same
maps and templates, before any port is opened:

* **Register map** (Modbus protocols): no two signals on one register or one coil; the verdict must have a carrier
  (``verdict_register`` or ``pass_coil``) and the result a freshness signal (ResultValid, the counter or the part
  id echo), or a stale pass could be read as a new one.
* **ASCII telegrams**: the encoding exists; every template formats with ``{part_id}`` (a number or a text id),
  ``{seq}`` and ``{score}`` (a number or NaN) and encodes; and no other verdict's line can be read as the pass line
  (the same text, or the same leading word: ``OK {part_id}`` for a reject reads as accept to a PLC that compares
  the first word).
"""
from __future__ import annotations

import codecs
import math
import string
from typing import Iterator

from edgead.errors import ConfigError

MAX_ADDRESS = 0xFFFF
MAX_TELEGRAM_BYTES = 256  # a result line; the part id (32) and a formatted score fit many times
# Sample values a template must format: a numeric and a text part id, a score and "no score".
_SAMPLES = ({"part_id": 17, "seq": 3, "score": 0.25}, {"part_id": "A-9", "seq": 65536, "score": math.nan})
TEMPLATE_FIELDS = ("part_id", "seq", "score")


def check_register_map(registers, *, image_registers: int | None = None, image_coils: int | None = None) -> None:
    """Refuse a map with overlapping addresses or without a verdict or freshness carrier.

    Args:
        registers: a ``RegisterMapConfig``.
        image_registers, image_coils: the server's image size (``modbus-server``), or None for the client.

    Raises:
        ConfigError: naming the ``plc.registers`` keys involved.
    """
    fields = vars(registers)
    for kind, suffix, size in (("register", "_register", image_registers), ("coil", "_coil", image_coils)):
        taken: dict[int, str] = {}
        for name, address in _addresses(fields, suffix, registers):
            if not 0 <= address <= MAX_ADDRESS:
                raise ConfigError(f"plc.registers.{name}: address {address} is outside 0..{MAX_ADDRESS}")
            if size is not None and address >= size:
                raise ConfigError(f"plc.registers.{name}: address {address} is outside the server image "
                                  f"(0..{size - 1})",
                                  hint="raise plc.modbus.image_registers / image_coils or move the signal")
            if address in taken:
                raise ConfigError(f"plc.registers.{name} and plc.registers.{taken[address]} are both {kind} "
                                  f"{address}: one would overwrite the other (a reject could read as accept)",
                                  hint="give every signal its own address, or null to leave one out")
            taken[address] = name
    if registers.verdict_register is None and registers.pass_coil is None:
        raise ConfigError("plc.registers.verdict_register and plc.registers.pass_coil are both null: the PLC would "
                          "get no verdict", hint="map at least one of them (the default: register 0, coil 0)")
    fresh = ("result_valid_register", "result_valid_coil", "counter_register", "part_id_register")
    if all(fields[name] is None for name in fresh):
        raise ConfigError("plc.registers: " + ", ".join(fresh) + " are all null: the PLC cannot tell a new result "
                          "from the previous one", hint="map result_valid_register or result_valid_coil")


def _addresses(fields: dict, suffix: str, registers) -> Iterator[tuple[str, int]]:
    """(key, address) of every mapped signal of one kind; the lot id text takes ``lot_id_chars / 2`` registers."""
    for name, address in fields.items():
        if not name.endswith(suffix) or address is None:
            continue
        if name == "lot_id_register":
            for offset in range(registers.lot_id_count):
                yield name, address + offset
        else:
            yield name, address


def _fields(template: str, key: str) -> Iterator[tuple[str, str | None]]:
    try:
        for literal, name, _spec, _conv in string.Formatter().parse(template):
            yield literal, name
    except ValueError as exc:
        raise ConfigError(f"{key}: {template!r} is not a valid template: {exc}",
                          hint="use {part_id}, {seq} and {score}; write a literal brace as {{ or }}") from exc


def render(template: str, key: str, encoding: str) -> list[bytes]:
    """The template formatted with every sample part and encoded (what the PLC would receive).

    Raises:
        ConfigError: for an unknown field, a format spec that fails on a sample, or text the encoding lacks.
    """
    for _literal, name in _fields(template, key):
        if name is not None and name.split(".")[0].split("[")[0] not in TEMPLATE_FIELDS:
            raise ConfigError(f"{key}: unknown field {{{name}}} in {template!r}",
                              hint=f"the fields are {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}")
    out = []
    for sample in _SAMPLES:
        try:
            text = template.format(**sample)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise ConfigError(f"{key}: {template!r} fails for part id {sample['part_id']!r}, score "
                              f"{sample['score']}: {exc}",
                              hint="part ids may be text (ASCII triggers) and the score NaN (fault results): "
                                   "avoid number formats on {part_id}; {score:.3f} is fine") from exc
        try:
            out.append(text.encode(encoding))
        except UnicodeEncodeError as exc:
            raise ConfigError(f"{key}: {template!r} cannot be encoded as {encoding}: {exc}") from exc
    if not all(out):
        raise ConfigError(f"{key}: the template is empty", hint="e.g. 'OK {part_id}\\r\\n'")
    longest = max(len(line) for line in out)
    if longest > MAX_TELEGRAM_BYTES:
        raise ConfigError(f"{key}: a result line can be {longest} bytes long, more than {MAX_TELEGRAM_BYTES}",
                          hint="a telegram is sent within the port's write timeout (1 s: about 1900 bytes at 19200 "
                               "Bd); keep result lines short")
    return out


def _head(template: str, key: str) -> str:
    """The literal text before the first field, without surrounding whitespace (the PLC's first word)."""
    for literal, name in _fields(template, key):
        if name is not None:
            return literal.strip()
    return template.strip()


def _skeleton(template: str, key: str) -> str:
    return "".join(literal + ("{}" if name is not None else "") for literal, name in _fields(template, key)).strip()


def check_ascii(ascii_cfg) -> None:
    """Refuse an unknown encoding, a broken template, or a line that could read as the pass line.

    Args:
        ascii_cfg: an ``AsciiConfig``.

    Raises:
        ConfigError: naming the ``plc.ascii`` key.
    """
    try:
        codecs.lookup(ascii_cfg.encoding)
    except LookupError:
        raise ConfigError(f"plc.ascii.encoding: {ascii_cfg.encoding!r} is not a known text encoding",
                          hint="ascii (the default), latin-1 or utf-8") from None
    prefix = ascii_cfg.trigger_prefix
    try:
        prefix.encode(ascii_cfg.encoding)
    except UnicodeEncodeError:
        raise ConfigError(f"plc.ascii.trigger_prefix: {prefix!r} cannot be encoded as {ascii_cfg.encoding}") from None
    if "\n" in prefix or "\r" in prefix:
        raise ConfigError("plc.ascii.trigger_prefix: must not contain a line end")
    if not len(prefix.encode(ascii_cfg.encoding)) < ascii_cfg.max_line_bytes <= 65536:
        raise ConfigError(f"plc.ascii.max_line_bytes={ascii_cfg.max_line_bytes} must be longer than the trigger "
                          "prefix and at most 65536")
    if ascii_cfg.max_garbage_lines < 1:
        raise ConfigError(f"plc.ascii.max_garbage_lines={ascii_cfg.max_garbage_lines} must be >= 1")
    names = ("pass_template", "reject_template", "no_read_template", "fault_template")
    lines = {n: render(getattr(ascii_cfg, n), f"plc.ascii.{n}", ascii_cfg.encoding) for n in names}
    accept = ascii_cfg.pass_template
    for name in names[1:]:
        other, key = getattr(ascii_cfg, name), f"plc.ascii.{name}"
        head_a, head_o = _head(accept, "plc.ascii.pass_template"), _head(other, key)
        same_word = head_a and head_o and (head_a.startswith(head_o) or head_o.startswith(head_a))
        if lines[name] == lines["pass_template"] or same_word or \
                (not (head_a and head_o) and _skeleton(accept, "") == _skeleton(other, "")):
            raise ConfigError(f"{key}: {other!r} can be read as the pass line {accept!r}",
                              hint="start every result line with its own word, e.g. OK / NG / NR / FLT")
