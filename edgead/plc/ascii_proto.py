"""ASCII telegram protocol: pure functions, bytes in and bytes out.

PLC -> station: a trigger line ``T<id>\\r\\n`` (prefix configurable; ``<id>`` is 1..32 characters of
``[A-Za-z0-9_-]``, digits-only ids become ints). ``\\n`` ends a line; one ``\\r`` before it is dropped. A trigger
may carry a recipe and a lot id, each once, after a space: ``T17 R2 LLOT-42\\r\\n`` (``R<number or name>``,
``L<lot id>``, 1..32 characters of ``[A-Za-z0-9_.-]``; a digits-only recipe is a number). They apply to that part and
stay in force for the next ones. A line with any other field is not a trigger.

Station -> PLC: one line per result from the templates (defaults ``OK {part_id}\\r\\n``, ``NG {part_id}\\r\\n``,
``NR {part_id}\\r\\n`` for no-read, ``FLT {part_id}\\r\\n`` for fault; ``{seq}`` and ``{score}`` are also
available).

Noise: a line that is not exactly a trigger (noise bytes, a wrong prefix, non-printable bytes, or longer than
``max_line_bytes`` without a line end) is reported as :class:`GarbageLine` and never taken as a trigger; the
decoder resyncs on the next line end. :class:`LineFramer` keeps the state between reads: an over-long line is one
:class:`GarbageLine`, however slowly its bytes arrive, and its rest is discarded up to the next line end, so at most
``max_line_bytes`` bytes are ever buffered. A PLC that gets no answer within its window re-sends the trigger.

Example:
    >>> decode(b"\\x00\\xffzz\\r\\nT17\\r\\n", AsciiConfig())
    (6, GarbageLine(raw=b'\\x00\\xffzz\\r\\n'))
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from edgead.plc.base import PartResult
from edgead.plc.config import AsciiConfig
from edgead.verdict import Verdict

_ID = re.compile(rb"[A-Za-z0-9_-]{1,32}")
_FIELD = re.compile(rb"[A-Za-z0-9_.-]{1,32}")
FIELDS = {b"R": "recipe", b"L": "lot_id"}  # a trigger's optional fields: letter -> TriggerLine attribute


@dataclass(frozen=True)
class TriggerLine:
    """A valid trigger telegram, with the recipe and lot id it carries (None: not given)."""

    part_id: int | str
    recipe: int | str | None = None
    lot_id: str | None = None


@dataclass(frozen=True)
class GarbageLine:
    """Bytes that were not a telegram (dropped)."""

    raw: bytes


def template_for(verdict: Verdict, cfg: AsciiConfig) -> str:
    """The result template of a verdict (the one table for ASCII)."""
    return getattr(cfg, _TEMPLATES[verdict])


_TEMPLATES = {Verdict.ACCEPT: "pass_template", Verdict.REJECT: "reject_template", Verdict.NO_READ: "no_read_template",
              Verdict.FAULT: "fault_template"}  # verdict -> the AsciiConfig field of its template


def encode_result(result: PartResult, cfg: AsciiConfig) -> bytes:
    """The result telegram.

    Args:
        result: the part's result.
        cfg: templates and encoding.

    Returns:
        The encoded line, e.g. ``b"OK 17\\r\\n"``.

    Example:
        >>> encode_result(PartResult(17, 1, Verdict.ACCEPT, 0.1), AsciiConfig())
        b'OK 17\\r\\n'
    """
    text = template_for(result.verdict, cfg).format(part_id=result.part_id, seq=result.seq, score=result.score)
    return text.encode(cfg.encoding)


def parse_line(line: bytes, cfg: AsciiConfig) -> TriggerLine | None:
    """A trigger from one line without its terminator, or None when the line is not exactly a trigger."""
    prefix = cfg.trigger_prefix.encode(cfg.encoding)
    if not line.startswith(prefix):
        return None
    body, *rest = line[len(prefix):].split(b" ")
    if not _ID.fullmatch(body):
        return None
    fields: dict = {}
    for item in rest:
        name = FIELDS.get(item[:1])
        if name is None or name in fields or not _FIELD.fullmatch(item[1:]):
            return None
        fields[name] = item[1:].decode("ascii")
    recipe = fields.get("recipe")
    if recipe is not None and recipe.isdigit():
        fields["recipe"] = int(recipe)
    text = body.decode("ascii")
    return TriggerLine(int(text) if text.isdigit() else text, **fields)


def decode(buf: bytes, cfg: AsciiConfig) -> tuple[int, TriggerLine | GarbageLine | None]:
    """The next telegram (or garbage) in a byte stream.

    Args:
        buf: bytes received so far.
        cfg: prefix and line length bound.

    Returns:
        ``(consumed, TriggerLine)``, ``(consumed, GarbageLine)``, or ``(0, None)`` to wait for more bytes.
        An empty line (e.g. a lone ``\\r\\n``) is consumed silently as ``(n, None)``.
    """
    end = buf.find(b"\n")
    if end < 0:
        if len(buf) > cfg.max_line_bytes:
            return len(buf), GarbageLine(bytes(buf))
        return 0, None
    raw = bytes(buf[:end + 1])
    line = raw[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line:
        return end + 1, None
    if len(raw) > cfg.max_line_bytes + 2:
        return end + 1, GarbageLine(raw)
    trigger = parse_line(line, cfg)
    return end + 1, trigger if trigger is not None else GarbageLine(raw)


class LineFramer:
    """Splits a byte stream into trigger and garbage lines, across reads, with a bounded buffer (pure: no I/O).

    An over-long line (``max_line_bytes`` without a line end) is reported once, when it overflows, with its first
    ``max_line_bytes`` bytes; the rest of it is dropped as it arrives, up to and including the next ``\\n``.

    Example:
        >>> framer = LineFramer(AsciiConfig(max_line_bytes=8))
        >>> [type(i).__name__ for i in framer.feed(b"x" * 20)], framer.feed(b"y" * 20 + b"\\nT5\\r\\n")
        (['GarbageLine'], [TriggerLine(part_id=5)])
    """

    def __init__(self, cfg: AsciiConfig):
        self.cfg = cfg
        self._buf = bytearray()
        self._skipping = False  # inside an over-long line: drop bytes up to the next line end
        self.discarded_bytes = 0

    def feed(self, data: bytes) -> list[TriggerLine | GarbageLine]:
        """The complete lines in ``data`` (with what earlier calls left over), in order."""
        out: list[TriggerLine | GarbageLine] = []
        view = memoryview(data)
        while view:
            if self._skipping:
                end = bytes(view).find(b"\n")
                if end < 0:
                    self.discarded_bytes += len(view)
                    return out
                self.discarded_bytes += end + 1
                view = view[end + 1:]
                self._skipping = False
                continue
            room = self.cfg.max_line_bytes + 3 - len(self._buf)  # a full line: text, \r, \n, plus one to overflow
            self._buf += view[:room]
            view = view[room:]
            while True:
                used, item = decode(bytes(self._buf), self.cfg)
                if used == 0:
                    break
                overflow = isinstance(item, GarbageLine) and not item.raw.endswith(b"\n")
                del self._buf[:used]
                if item is not None:
                    out.append(GarbageLine(item.raw[:self.cfg.max_line_bytes]) if overflow else item)
                if overflow:
                    self._skipping = True
                    self.discarded_bytes += used - min(used, self.cfg.max_line_bytes)
                    break
        return out

    @property
    def buffered(self) -> int:
        """Bytes held for a line not yet complete (at most ``max_line_bytes + 3``)."""
        return len(self._buf)
