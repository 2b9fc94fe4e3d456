"""How an inference runtime uses the CPU's cores: how many threads, and what they do when they have no work.

The station sets both deliberately (``model.intra_op_threads``, ``model.thread_wait``): its loop runs alignment,
the record commit and the PLC link between two inferences, on the same cores, and an image writer beside them.

Example:
    >>> ThreadWait("block").ort_spinning
    '0'
    >>> engine_threads(ThreadCount.CORES_LEFT, cores=4), engine_threads(ThreadCount.CORES_LEFT, cores=1)
    (3, 1)
"""
from __future__ import annotations

import os
from enum import Enum


class ThreadWait(str, Enum):
    """What a runtime's idle worker threads do, between operators and between parts (ONNX Runtime's
    ``session.intra_op.allow_spinning``; OpenVINO has no such setting and ignores it)."""

    BLOCK = "block"  # sleep until there is work: the cores stay free for alignment, recording, the PLC link
    SPIN = "spin"  # busy-wait (ONNX Runtime's own default): faster wake-up, but they burn the cores the loop needs
    SPIN_IN_RUN = "spin_in_run"  # busy-wait inside one inference, sleep as soon as it returns (force_spinning_stop)

    @property
    def ort_spinning(self) -> str:
        """The value of ONNX Runtime's ``session.intra_op.allow_spinning`` entry."""
        return "0" if self is ThreadWait.BLOCK else "1"

    @property
    def ort_entries(self) -> dict[str, str]:
        """ONNX Runtime's session config entries for this setting."""
        out = {"session.intra_op.allow_spinning": self.ort_spinning}
        if self is ThreadWait.SPIN_IN_RUN:
            out["session.force_spinning_stop"] = "1"
        return out


class ThreadCount(str, Enum):
    """How many inference threads, as a rule on the cores this process may use (``model.intra_op_threads``
    also takes a number)."""

    CORES = "cores"  # one per usable core
    CORES_LEFT = "cores_left"  # the usable cores less one for the loop (align, record, PLC link), at least 1


LOOP_CORES = 1
"""The cores ``cores_left`` leaves to the station's loop: one thread (alignment, the record commit, the PLC link)
plus the short wake-ups of the recorder, the link's peers and the image writer."""


def engine_threads(setting: int | ThreadCount | None, cores: int | None = None) -> int:
    """The inference thread count of a ``model.intra_op_threads`` setting.

    Args:
        setting: a number (as it is), :class:`ThreadCount`, or None (the same as ``cores``).
        cores: the usable cores (default :func:`usable_cores`).
    """
    if isinstance(setting, int) and not isinstance(setting, bool):
        return setting
    cores = usable_cores() if cores is None else cores
    if setting is None or ThreadCount(setting) is ThreadCount.CORES:
        return cores
    return max(1, cores - LOOP_CORES)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask: a cgroup/cpuset or ``taskset`` narrows it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
