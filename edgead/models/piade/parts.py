"""PIADE building blocks: squeeze-and-excitation, the adaptive pooling pyramid (as fixed matrices), the decoder."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from edgead.models.common import channel_pool_matrix


class SqueezeExcitation(nn.Module):
    """Hu et al. (2018): ``x * sigmoid(W2 relu(W1 gap(x)))`` with a bottleneck of ``channels // reduction``."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        nn.init.zeros_(self.fc2.weight)  # start near a constant gate of sigmoid(bias)
        nn.init.constant_(self.fc2.bias, 3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * gate


class PoolingPyramid(nn.Module):
    """Adaptive average pooling to each ``size x size`` level, then a 1x1 conv to ``out_channels`` + BatchNorm, each
    position cut into ``capsule_dim``-d capsules.

    The pooling is a pair of fixed matrices (``adaptive_avg_pool`` semantics, any grid size, exported as MatMul),
    because the ONNX exporter only handles adaptive pooling whose input divides the output.

    Args:
        in_channels: channels of the feature map.
        grid_hw: its (height, width).
        sizes: pyramid levels, e.g. ``(8, 4, 2, 1)``.
        out_channels: channels per level after the 1x1 conv.
        capsule_dim: capsule size (divides ``out_channels``).
    """

    def __init__(self, in_channels: int, grid_hw: Sequence[int], sizes: Sequence[int], out_channels: int,
                 capsule_dim: int):
        super().__init__()
        self.capsule_dim = int(capsule_dim)
        self.levels = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
            for _ in sizes)
        for i, size in enumerate(sizes):
            self.register_buffer(f"pool_h{i}", channel_pool_matrix(grid_hw[0], size).t().contiguous(), persistent=False)
            self.register_buffer(f"pool_w{i}", channel_pool_matrix(grid_hw[1], size).contiguous(), persistent=False)
        self.n_capsules = sum(s * s for s in sizes) * out_channels // self.capsule_dim

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """Capsules ``[N, n_capsules, capsule_dim]`` of a feature map ``[N, C, h, w]``."""
        caps = []
        for i, level in enumerate(self.levels):
            pooled = getattr(self, f"pool_h{i}") @ f @ getattr(self, f"pool_w{i}")  # [N, C, s, s]
            out = level(pooled)
            caps.append(out.permute(0, 2, 3, 1).reshape(f.shape[0], -1, self.capsule_dim))
        return torch.cat(caps, dim=1)


def transposed_decoder(in_channels: int, stages: int, width: int) -> nn.Sequential:
    """``stages`` x (ConvTranspose 4x4 stride 2, BN, ReLU), halving from ``width`` to at least 16 channels, then a
    3x3 conv to RGB and tanh."""
    layers, c, out = [], in_channels, width
    for _ in range(stages):
        layers += [nn.ConvTranspose2d(c, out, 4, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        c, out = out, max(out // 2, 16)
    layers += [nn.Conv2d(c, 3, 3, padding=1), nn.Tanh()]
    return nn.Sequential(*layers)
