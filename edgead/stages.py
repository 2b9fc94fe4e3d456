"""The timed stages of a part, in order: shared by the station's loop, its records, its metrics and the run summary
(each has a ``<stage>_ms`` record column and an ``edgead_stage_seconds{stage=...}`` series).

``queue`` is how long the part waited for the loop: from its PLC trigger (as the link read it), or from its frame's
arrival when the camera starts the inspections and frames are captured ahead, to the start of its inspection (None
when the loop itself waited for the frame). ``record`` is the commit of the part's row, which comes before
``signal`` (the PLC answer): a part the PLC got an answer for is always on record.

Example:
    >>> STAGES, TIMINGS[-1]
    (('queue', 'capture', 'align', 'infer', 'decide', 'record', 'signal'), 'total')
"""
from __future__ import annotations

STAGES = QUEUE, CAPTURE, ALIGN, INFER, DECIDE, RECORD, SIGNAL = ("queue", "capture", "align", "infer", "decide",
                                                                  "record", "signal")
"""The stages of :meth:`edgead.daemon.station.Station.step`, each timed."""

TOTAL = "total"
"""Trigger (or frame) in to result out."""

TIMINGS = (*STAGES, TOTAL)
"""What is recorded and exported per part (``<name>_ms`` columns, ``edgead_stage_seconds{stage=...}``)."""
