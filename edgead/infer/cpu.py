"""The CPU's instruction-set features, as Linux names them in ``/proc/cpuinfo`` (``avx512_bf16``, ``amx_int8``).

Conversion uses them to decide which OpenVINO candidates are worth building (a target profile's ``openvino`` key
lists the features each keys on); the OpenVINO backend warns when a bundle asks for BF16 on a CPU without them.

Example:
    >>> "avx2" in cpu_flags() or True
    True
"""
from __future__ import annotations

import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str | os.PathLike = CPUINFO) -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (empty where there is no such file, e.g. not Linux).

    Args:
        cpuinfo: the file to read (``/proc/cpuinfo``).

    Returns:
        The flags, e.g. ``{"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", ...}``.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_model(cpuinfo: str | os.PathLike = CPUINFO) -> str:
    """The first CPU's model name, or ``"unknown"``."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return "unknown"
