"""EfficientAD's networks: the patch description network (PDN, size S, with a width factor) and the autoencoder,
adapted to any (fixed) model resolution."""
from __future__ import annotations

import math
from enum import Enum
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

PDN_S_WIDTHS = (128, 256, 256)  # the paper's PDN-S hidden channels


def pdn_small(out_channels: int, width: float) -> nn.Sequential:
    """PDN-S (33 px receptive field, output stride 4) with hidden channels ``PDN_S_WIDTHS * width``."""
    c1, c2, c3 = (max(1, int(round(c * width))) for c in PDN_S_WIDTHS)
    return nn.Sequential(
        nn.Conv2d(3, c1, 4, padding=3), nn.ReLU(inplace=True), nn.AvgPool2d(2, stride=2, padding=1),
        nn.Conv2d(c1, c2, 4, padding=3), nn.ReLU(inplace=True), nn.AvgPool2d(2, stride=2, padding=1),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c3, out_channels, 4),
    )


PDN_M_WIDTHS = (256, 512, 512, 512)  # the paper's PDN-M hidden channels (conv1, conv2, conv3 1x1, conv4 3x3)


def pdn_medium(out_channels: int, width: float) -> nn.Sequential:
    """PDN-M: PDN-S made wider (``PDN_M_WIDTHS * width``) with a 1x1 and a 3x3 conv more after the second pooling and
    a final 1x1 conv; same 33 px receptive field and output grid as PDN-S."""
    c1, c2, c3, c4 = (max(1, int(round(c * width))) for c in PDN_M_WIDTHS)
    return nn.Sequential(
        nn.Conv2d(3, c1, 4, padding=3), nn.ReLU(inplace=True), nn.AvgPool2d(2, stride=2, padding=1),
        nn.Conv2d(c1, c2, 4, padding=3), nn.ReLU(inplace=True), nn.AvgPool2d(2, stride=2, padding=1),
        nn.Conv2d(c2, c3, 1), nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c4, out_channels, 4), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 1),
    )


class PdnSize(str, Enum):
    """The paper's two patch description network sizes."""

    S = "S"
    M = "M"


PDN_BUILDERS: dict[PdnSize, Callable[[int, float], nn.Sequential]] = {PdnSize.S: pdn_small, PdnSize.M: pdn_medium}
"""One builder per PDN size: ``builder(out_channels, width)``."""


def pdn_grid(input_hw: tuple[int, int]) -> tuple[int, int]:
    """The PDN output size for an input size (PDN-S and PDN-M alike, see :func:`pdn_small`)."""

    def side(n: int) -> int:
        n = (n + 3) // 2 + 1
        n = (n + 3) // 2 + 1
        return n - 3

    return side(input_hw[0]), side(input_hw[1])


class Autoencoder(nn.Module):
    """Convolutional autoencoder to a 1x1 latent, decoded to the PDN grid (as the paper's, for any input size).

    The encoder halves the image (4x4 stride-2 convolutions) while both sides are at least 8 px (at most 6 times),
    then a convolution as large as what is left makes the 1x1 latent. The decoder bilinearly resizes through sizes
    growing geometrically up to the PDN grid, each followed by a 3x3 convolution and dropout (training only).

    Args:
        input_hw: model resolution.
        out_channels: channels of the output (the teacher's).
        width: hidden channels (paper: 64).
        latent: latent channels (paper: 64).
        dropout: dropout rate after the decoder stages (paper: 0.2), training only.
    """

    def __init__(self, input_hw: tuple[int, int], out_channels: int, width: int = 32, latent: int = 64,
                 dropout: float = 0.2):
        super().__init__()
        h, w = input_hw
        layers: list[nn.Module] = []
        c_in = 3
        for _ in range(6):
            if min(h, w) < 8:
                break
            layers += [nn.Conv2d(c_in, width, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in, h, w = width, h // 2, w // 2
        layers.append(nn.Conv2d(c_in, latent, (h, w)))
        self.encoder = nn.Sequential(*layers)
        gh, gw = pdn_grid(input_hw)
        stages = 6
        self.sizes = [(max(1, math.ceil(gh * 2.0 ** (i - stages))) + 2, max(1, math.ceil(gw * 2.0 ** (i - stages))) + 2)
                      for i in range(stages)] + [(gh, gw)]
        self.decoder = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(latent if i == 0 else width, width, 3, padding=1), nn.ReLU(inplace=True))
             for i in range(stages + 1)]
        )
        self.dropout = float(dropout)
        self.stages = stages
        self.head = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        for i, (size, block) in enumerate(zip(self.sizes, self.decoder)):
            z = block(F.interpolate(z, size=size, mode="bilinear", align_corners=False))
            if i < self.stages:  # dropout only while training: no node in the exported graph
                z = F.dropout(z, self.dropout, training=self.training)
        return self.head(z)
