"""The timed stages of a part, in order: shared by the station's loop, its records and its metrics.

Example:
    >>> STAGES, TIMINGS[-1]
    (('capture', 'align', 'infer', 'decide', 'signal'), 'total')
"""
from __future__ import annotations

STAGES = CAPTURE, ALIGN, INFER, DECIDE, SIGNAL = ("capture", "align", "infer", "decide", "signal")
"""The stages of :meth:`edgead.daemon.station.Station.step`, each timed."""

TOTAL = "total"
"""Trigger (or frame) in to result out."""

TIMINGS = (*STAGES, TOTAL)
"""What is recorded and exported per part (``<name>_ms`` columns, ``edgead_stage_seconds{stage=...}``)."""
