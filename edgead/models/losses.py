"""Reconstruction losses shared by the autoencoder-style detectors: SSIM and a perceptual (feature) loss.

Both come as per-pixel maps (for localisation inside the exported graph) and as per-image means (for training and
scoring). Everything is plain Conv/Pad/Resize arithmetic and exports to ONNX opset 17.

SSIM follows Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``
with ``L`` the data range. The models compare images on their ``[0, 1]`` scale (``data_range=1``); the window is
applied with reflect padding so the map has the input size.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.nn import functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _window(sigma: float, size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Normalised 1-D Gaussian, computed in Python so the exported graph holds it as a constant."""
    radius = size // 2
    weights = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    total = sum(weights)
    return torch.tensor([w / total for w in weights], device=device, dtype=dtype)


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable blur of each channel of ``[N, C, H, W]`` with reflect padding (output keeps the size)."""
    shape, radius = x.shape, kernel.numel() // 2
    x = F.pad(x.reshape(-1, 1, shape[2], shape[3]), (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(F.conv2d(x, kernel.reshape(1, 1, -1, 1)), kernel.reshape(1, 1, 1, -1))
    return x.reshape(shape)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = SSIM_WINDOW,
             sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-pixel SSIM of two image batches, averaged over channels.

    Args:
        x: ``[N, C, H, W]``, values on a scale of width ``data_range`` (``H, W > window // 2``).
        y: same shape as ``x``.
        data_range: width of the value range (1 for [0, 1] images).
        window: Gaussian window size (odd).
        sigma: Gaussian window standard deviation.

    Returns:
        ``[N, H, W]``; 1 where the images agree.

    Example:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> bool(torch.allclose(ssim_map(x, x), torch.ones(1, 32, 32)))
        True
    """
    kernel = _window(sigma, window, x.device, x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _blur(x, kernel), _blur(y, kernel)
    var_x = _blur(x * x, kernel) - mu_x * mu_x
    var_y = _blur(y * y, kernel) - mu_y * mu_y
    cov = _blur(x * y, kernel) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (num / den).mean(dim=1)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image: ``[N]`` (see :func:`ssim_map`)."""
    return ssim_map(x, y, data_range).mean(dim=(1, 2))


def to_unit_range(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo the backbone normalisation: ``x * std + mean`` (the ``[0, 1]`` image SSIM is computed on)."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x * s + m


def perceptual_map(backbone, x: torch.Tensor, y: torch.Tensor, layers: Sequence[str]) -> torch.Tensor:
    """Per-pixel perceptual residual: squared feature differences of frozen backbone layers, averaged over channels,
    upsampled bilinearly to the input size and summed over layers.

    Its image mean approximates :func:`perceptual_loss` (bilinear upsampling nearly preserves the mean).

    Args:
        backbone: an ``edgead.models.backbone.Backbone`` (frozen).
        x: normalised images ``[N, 3, H, W]``.
        y: their reconstructions, same shape and normalisation.
        layers: early backbone layers, e.g. ``["stem", "block1"]``.

    Returns:
        ``[N, H, W]``.
    """
    with torch.no_grad():
        fx = backbone.features(x, layers)
    fy = backbone.features(y, layers)
    out = None
    for name in layers:
        diff = (fx[name] - fy[name]).pow(2).mean(dim=1, keepdim=True)
        diff = F.interpolate(diff, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out = diff if out is None else out + diff
    return out[:, 0]


def perceptual_loss(backbone, x: torch.Tensor, y: torch.Tensor, layers: Sequence[str]) -> torch.Tensor:
    """Per-image perceptual loss ``sum_l mean((phi_l(x) - phi_l(y))^2)``: ``[N]``."""
    fx, fy = backbone.features(x, layers), backbone.features(y, layers)
    return sum((fx[name] - fy[name]).pow(2).mean(dim=(1, 2, 3)) for name in layers)


__all__ = ["perceptual_loss", "perceptual_map", "ssim", "ssim_map", "to_unit_range"]
