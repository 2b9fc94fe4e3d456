"""How an inference runtime uses the CPU's cores: how many threads, and what they do when they have no work.

The station sets both deliberately (``model.intra_op_threads``, ``model.thread_wait``): its loop runs alignment,
the record commit and the PLC link between two inferences, on the same cores, and an image writer beside them.

Example:
    >>> ThreadWait("block").ort_spinning
    '0'
"""
from __future__ import annotations

import os
from enum import Enum


class ThreadWait(str, Enum):
    """What a runtime's idle worker threads do, between operators and between parts (ONNX Runtime's
    ``session.intra_op.allow_spinning``; OpenVINO has no such setting and ignores it)."""

    BLOCK = "block"  # sleep until there is work: the cores stay free for alignment, recording, the PLC link
    SPIN = "spin"  # busy-wait (ONNX Runtime's own default): faster wake-up, but they burn the cores the loop needs

    @property
    def ort_spinning(self) -> str:
        """The value of ONNX Runtime's ``session.intra_op.allow_spinning`` entry."""
        return "1" if self is ThreadWait.SPIN else "0"


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask: a cgroup/cpuset or ``taskset`` narrows it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
