"""Progress of long steps, one way everywhere: tqdm bars on a terminal, plain lines otherwise, nothing when quiet.

Training, evaluation, conversion, deploy and the demo report through :func:`progress`. tqdm (in the ``train``
extra) draws the bars; it is imported only when a bar is drawn, so the station, which has no tqdm, reports
through the same calls as plain lines. A log file or a pipe gets lines too (no carriage-return bars), and a step
of interest (a gate verdict, a deploy step) becomes a line of its own above the bar with :meth:`Progress.note`.

Example:
    >>> with progress(3, "convert", unit="candidate") as bar:          # doctest: +SKIP
    ...     for c in candidates:
    ...         bar.note(f"{c.name}: gate passed")
    ...         bar.update()
"""
from __future__ import annotations

import os
import sys
import time
from typing import IO, Iterable, Iterator, TypeVar

T = TypeVar("T")

QUIET_ENV = "EDGEAD_QUIET"
"""Set to 1 to silence progress everywhere (e.g. in a service's environment); ``--quiet`` does it per command."""


class Progress:
    """One long step: a bar on a terminal, lines elsewhere, nothing when disabled. A context manager."""

    def __init__(self, total: int | None, desc: str, *, enabled: bool = True, unit: str = "it",
                 stream: IO[str] | None = None, leave: bool = True, lines: int = 0):
        self.total, self.desc, self.unit = total, desc, unit
        self.lines = lines if total else 0
        self._postfix = ""
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and os.environ.get(QUIET_ENV, "") not in ("1", "true", "yes")
        self.count = 0
        self._t0 = time.monotonic()
        self._bar = None
        if self.enabled and _is_tty(self.stream):
            try:
                from tqdm import tqdm
            except ImportError:  # the station: no tqdm, plain lines
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=leave,
                                 mininterval=0.5, dynamic_ncols=True)

    @property
    def is_bar(self) -> bool:
        """True when a tqdm bar is drawn (a terminal with tqdm installed)."""
        return self._bar is not None

    def update(self, n: int = 1) -> None:
        """``n`` more units done (lines mode with ``lines=K``: a line at each K-th of the total)."""
        before, self.count = self.count, self.count + n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self.lines and self.total:
            step = self.total / self.lines
            if int(self.count / step) > int(before / step) or self.count == self.total:
                rate = self.count / max(time.monotonic() - self._t0, 1e-9)
                extra = f"  {self._postfix}" if self._postfix else ""
                print(f"{self.desc}: {self.count}/{self.total} {self.unit} ({rate:.3g}/s){extra}", file=self.stream,
                      flush=True)

    def set_postfix(self, text: str) -> None:
        """A short status after the bar (e.g. the loss); lines mode shows it on its next line."""
        self._postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def note(self, message: str) -> None:
        """A line of its own (above the bar on a terminal), e.g. a candidate's gate verdict as it lands."""
        if not self.enabled:
            return
        position = f" {self.count}/{self.total}" if self.total else ""
        line = f"{self.desc}{position}: {message}"
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar (lines mode: nothing, the notes said it)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: int | None, desc: str, *, enabled: bool = True, unit: str = "it",
             stream: IO[str] | None = None, leave: bool = True, lines: int = 0) -> Progress:
    """A :class:`Progress` for ``total`` units (None: unknown).

    Args:
        total: how many units the step has.
        desc: what is in progress (the bar's label, each note's prefix).
        enabled: False for ``--quiet`` (also off with ``EDGEAD_QUIET=1``).
        unit: the unit's name on the bar.
        stream: where to write (default stderr; stdout stays for results).
        leave: keep the finished bar on screen.
        lines: without a bar (a log, a pipe, no tqdm), print the count this many times over the total (0: only
            the notes).
    """
    return Progress(total, desc, enabled=enabled, unit=unit, stream=stream, leave=leave, lines=lines)


def track(items: Iterable[T], desc: str, *, total: int | None = None, enabled: bool = True, unit: str = "it",
          leave: bool = False) -> Iterator[T]:
    """Iterate ``items`` with a bar (tqdm-style wrapping; lines mode prints nothing per item)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(total, desc, enabled=enabled, unit=unit, leave=leave) as bar:
        for item in items:
            yield item
            bar.update()


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
