"""Where a model trains: ``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu`` or ``cuda[:N]``.

Every model trains through :func:`fit_on`: the model and its batches go to the device, the model's fit function runs
(its own tensors follow the batches' device), and the fitted model comes back to the CPU, where export, calibration
and the bundle expect it. Bundles do not depend on where they were trained, beyond float rounding.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Callable, Iterator

import torch

from edgead.errors import ConfigError


class Device(str, Enum):
    """The ``--device`` choices."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


def resolve_device(device: Device | str | torch.device | None = Device.AUTO) -> torch.device:
    """The torch device for a ``--device`` value.

    Args:
        device: ``auto`` (default), ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        The device.

    Raises:
        ConfigError: for an unknown name, or ``cuda`` when torch sees no CUDA device (naming torch's build).
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = Device.AUTO.value if device is None else str(getattr(device, "value", device))
    kind, _, index = name.partition(":")
    if kind not in {d.value for d in Device} or (index and (kind != "cuda" or not index.isdigit())):
        raise ConfigError(f"unknown device {name!r}", hint="use auto, cpu, cuda or cuda:N")
    available = torch.cuda.is_available()
    if kind == Device.AUTO.value:
        return torch.device("cuda" if available else "cpu")
    if kind == Device.CUDA.value:
        if not available:
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ConfigError(f"--device {name}: torch {torch.__version__} ({build}) sees no CUDA device",
                              hint="install a CUDA build of torch on a GPU host, or train with --device cpu or auto")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise ConfigError(f"--device {name}: only {count} CUDA device(s)", hint=f"use cuda:0..cuda:{count - 1}")
    return torch.device(name)


class DeviceBatches:
    """Re-iterable batches moved to ``device`` as they are read (``len()`` as the wrapped batches)."""

    def __init__(self, batches, device: torch.device):
        self.batches = batches
        self.device = device

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for batch in self.batches:
            yield batch.to(self.device, non_blocking=True)


def fit_on(fit: Callable[..., Any], model: torch.nn.Module, batches, device: torch.device, **options: Any) -> Any:
    """Run ``fit(model, batches, **options)`` on ``device`` and leave the model on the CPU.

    Tensors among ``options`` (e.g. the labelled ``defective`` images) move too.

    Returns:
        What ``fit`` returns (tensors in it moved to the CPU where it is a tensor).
    """
    if device.type == "cpu":
        return fit(model, batches, **options)
    moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in options.items()}
    model.to(device)
    try:
        out = fit(model, DeviceBatches(batches, device), **moved)
    finally:
        model.to("cpu")
    return out.cpu() if isinstance(out, torch.Tensor) else out


__all__ = ["Device", "DeviceBatches", "fit_on", "resolve_device"]
