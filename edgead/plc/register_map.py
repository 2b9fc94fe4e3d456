"""Register map: station state <-> Modbus register and coil values. Pure; addresses come from the config.

Default layout (holding registers, 0-based; "4xxxx" numbering = address + 40001):

==========  ================  =====================================================================
address     name              value
==========  ================  =====================================================================
0           verdict           0 = no result yet, 1 = pass, 2 = reject, 3 = no-read, 4 = fault
1           ResultValid       1 when registers 0..5 hold a fresh result; 0 from trigger ack to result
2           part counter      results sent since open, u16, wraps 65535 -> 0
3           part id echo      the trigger's part id (u16; a non-numeric id echoes the sequence instead)
4           sequence          the station's sequence number (u16, wraps)
5           score x 1000      normalised score x 1000, clamped to 0..65535 (0.5 = threshold -> 500);
                              65535 also means "no score" (fail-safe results)
6           status word       bit 0 ready, bit 1 busy, bit 2 fault, bit 3 heartbeat (toggles)
7           trigger           PLC -> station: the PLC writes a non-zero part id (1..65535)
8           trigger ack       station -> PLC: the part id of the trigger the station accepted
==========  ================  =====================================================================

Coils: 0 = pass (1 only for a pass verdict), 1 = ResultValid. Any entry set to ``None`` is left out.

Recipes and lots (off by default; ``plc.registers.recipe_register``, ``lot_id_register``): the PLC writes the
recipe number (1..65535; 0 = keep the recipe in force) and the lot id text (two ASCII characters per register,
high byte first, padded with 0 bytes; all zero = keep the lot in force) **before** it writes the trigger. The
station reads them with each trigger; they apply to that part and stay in force after it.

Trigger handshake over registers: the PLC writes a new part id into *trigger* and holds it. The station takes it,
clears *trigger* to 0, **then** writes the id into *trigger ack* (and clears ResultValid). The PLC waits for
*trigger ack* == its id before it writes the next id, so no trigger is lost or merged. The result registers are
written first and ResultValid last, so the PLC never reads a valid flag over stale data.

Power-up / fail-safe image: verdict = 2 (reject), pass coil = 0, ResultValid = 0, status word = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from edgead.plc.base import NO_RESULT_CODE, VERDICT_CODES, PartResult
from edgead.plc.config import RegisterMapConfig
from edgead.verdict import Verdict

STATUS_READY, STATUS_BUSY, STATUS_FAULT, STATUS_HEARTBEAT = 0x1, 0x2, 0x4, 0x8
SCORE_SCALE = 1000
U16_MAX = 0xFFFF


@dataclass(frozen=True)
class Writes:
    """Values to write: ``registers`` and ``coils`` map address -> value (coils 0/1)."""

    registers: dict[int, int] = field(default_factory=dict)
    coils: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ResultView:
    """A result as the PLC reads it back from the registers (``None`` where the map leaves a signal out)."""

    verdict: Verdict | None
    valid: bool | None
    counter: int | None
    part_id: int | None
    seq: int | None
    score: float | None


def _put(target: dict[int, int], address: int | None, value: int) -> None:
    if address is not None:
        target[address] = value


def score_to_u16(score: float) -> int:
    """Score x 1000, rounded and clamped to 0..65535; NaN (no score) -> 65535."""
    if math.isnan(score):
        return U16_MAX
    return max(0, min(U16_MAX, round(score * SCORE_SCALE)))


def part_id_to_u16(part_id: int | str, seq: int) -> int:
    """The part id as a register value: numeric ids modulo 65536, other ids fall back to the sequence."""
    try:
        return int(part_id) & U16_MAX
    except (TypeError, ValueError):
        return seq & U16_MAX


def encode_result(result: PartResult, counter: int, cfg: RegisterMapConfig) -> tuple[Writes, Writes]:
    """Registers and coils for one result.

    Args:
        result: the part's result.
        counter: the part counter after this part (wrapped to u16 here).
        cfg: the address map.

    Returns:
        ``(data, valid)``: write ``data`` first, then ``valid`` (ResultValid = 1).

    Example:
        >>> data, valid = encode_result(PartResult(17, 1, Verdict.ACCEPT, 0.25), 1, RegisterMapConfig())
        >>> data.registers
        {0: 1, 2: 1, 3: 17, 4: 1, 5: 250}
    """
    data = Writes()
    _put(data.registers, cfg.verdict_register, VERDICT_CODES[result.verdict])
    _put(data.registers, cfg.counter_register, counter & U16_MAX)
    _put(data.registers, cfg.part_id_register, part_id_to_u16(result.part_id, result.seq))
    _put(data.registers, cfg.seq_register, result.seq & U16_MAX)
    _put(data.registers, cfg.score_register, score_to_u16(result.score))
    _put(data.coils, cfg.pass_coil, 1 if result.verdict.passes else 0)
    valid = Writes()
    _put(valid.registers, cfg.result_valid_register, 1)
    _put(valid.coils, cfg.result_valid_coil, 1)
    return data, valid


def encode_failsafe(cfg: RegisterMapConfig) -> Writes:
    """The power-up / shutdown image: verdict reject, pass off, ResultValid off, status word 0."""
    out = Writes()
    _put(out.registers, cfg.verdict_register, VERDICT_CODES[Verdict.REJECT])
    _put(out.registers, cfg.result_valid_register, 0)
    _put(out.registers, cfg.status_register, 0)
    _put(out.coils, cfg.pass_coil, 0)
    _put(out.coils, cfg.result_valid_coil, 0)
    return out


def status_word(ready: bool, busy: bool, fault: bool, heartbeat: bool) -> int:
    """Pack the status bits (bit 0 ready, 1 busy, 2 fault, 3 heartbeat)."""
    return (STATUS_READY * ready) | (STATUS_BUSY * busy) | (STATUS_FAULT * fault) | (STATUS_HEARTBEAT * heartbeat)


def encode_status(ready: bool, busy: bool, fault: bool, heartbeat: bool, cfg: RegisterMapConfig) -> Writes:
    """The status word write (empty when the map has no status register)."""
    out = Writes()
    _put(out.registers, cfg.status_register, status_word(ready, busy, fault, heartbeat))
    return out


def decode_trigger(value: int) -> int | None:
    """A trigger register value -> part id, or None for 0 (no trigger)."""
    return value or None


def decode_text(values: tuple[int, ...] | list[int]) -> str | None:
    """Registers holding text (two ASCII characters each, high byte first, 0-padded) -> the text; None when all
    zero.

    Raises:
        ValueError: bytes that are not printable ASCII, or a 0 byte followed by text.

    Example:
        >>> decode_text([0x4C2D, 0x3432, 0])
        'L-42'
    """
    raw = b"".join(int(v & U16_MAX).to_bytes(2, "big") for v in values)
    text = raw.rstrip(b"\x00")
    if not text:
        return None
    if b"\x00" in text or not all(0x20 <= b < 0x7F for b in text):
        raise ValueError(f"lot id registers hold bytes that are not printable ASCII: {raw.hex(' ')}")
    return text.decode("ascii").strip() or None


def encode_text(text: str, count: int) -> list[int]:
    """The inverse of :func:`decode_text` (what a PLC writes), ``count`` registers.

    Example:
        >>> encode_text("L-42", 3)
        [19501, 13362, 0]
    """
    raw = text.encode("ascii").ljust(2 * count, b"\x00")[:2 * count]
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def trigger_extras(recipe: int | None, lot: tuple[int, ...] | None) -> dict:
    """What a trigger carries besides its id, from the recipe register and the lot id registers (as read).

    Returns:
        ``Trigger`` keyword arguments: ``recipe`` (None for 0 or unmapped), ``lot_id``, and ``error`` for a lot
        id that is not text (the station answers that part fail-safe).
    """
    out: dict = {"recipe": recipe or None}
    if lot is not None:
        try:
            out["lot_id"] = decode_text(lot)
        except ValueError as exc:
            out["error"] = str(exc)
    return out


def encode_trigger_ack(part_id: int, cfg: RegisterMapConfig) -> tuple[Writes, Writes]:
    """The writes that accept a trigger, in order: ``(clear, ack)``.

    ``clear`` zeroes the trigger register and ResultValid; ``ack`` then echoes the id in the ack register.
    """
    clear = Writes()
    _put(clear.registers, cfg.trigger_register, 0)
    _put(clear.registers, cfg.result_valid_register, 0)
    _put(clear.coils, cfg.result_valid_coil, 0)
    ack = Writes()
    _put(ack.registers, cfg.trigger_ack_register, part_id & U16_MAX)
    return clear, ack


def decode_result(registers: Mapping[int, int], coils: Mapping[int, int], cfg: RegisterMapConfig) -> ResultView:
    """Read a result back from register/coil values (the PLC's view; used by tests and tools).

    Args:
        registers: address -> value, at least the mapped result registers.
        coils: address -> 0/1.
        cfg: the address map.

    Returns:
        The decoded :class:`ResultView`.
    """
    def reg(address: int | None) -> int | None:
        return None if address is None else registers[address]

    code = reg(cfg.verdict_register)
    codes = {v: k for k, v in VERDICT_CODES.items()}
    raw_score = reg(cfg.score_register)
    valid = reg(cfg.result_valid_register)
    if valid is None and cfg.result_valid_coil is not None:
        valid = coils[cfg.result_valid_coil]
    return ResultView(
        verdict=None if code in (None, NO_RESULT_CODE) else codes.get(code),
        valid=None if valid is None else bool(valid),
        counter=reg(cfg.counter_register),
        part_id=reg(cfg.part_id_register),
        seq=reg(cfg.seq_register),
        score=None if raw_score is None else raw_score / SCORE_SCALE,
    )


def runs(values: Mapping[int, int]) -> list[tuple[int, list[int]]]:
    """Group address -> value into runs of consecutive addresses, ascending (one write request per run).

    Example:
        >>> runs({0: 1, 1: 2, 5: 3})
        [(0, [1, 2]), (5, [3])]
    """
    out: list[tuple[int, list[int]]] = []
    for address in sorted(values):
        if out and out[-1][0] + len(out[-1][1]) == address:
            out[-1][1].append(values[address])
        else:
            out.append((address, [values[address]]))
    return out
