"""DRAEM's two sub-networks, with a width parameter (the paper: 128 for the reconstructive and 64 for the
discriminative network; the SDK defaults are much smaller so that training fits a CPU budget)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class Reconstructive(nn.Module):
    """Encoder-decoder without skip connections: ``[N, 3, H, W] -> [N, 3, H, W]`` (H, W divisible by 2**(depth-1)).

    Args:
        width: channels of the first level; each deeper level doubles them.
        depth: levels (``depth - 1`` poolings).
    """

    def __init__(self, width: int, depth: int):
        super().__init__()
        chans = [width * 2**i for i in range(depth)]
        self.down = nn.ModuleList([_block(c_in, c_out) for c_in, c_out in zip([3] + chans[:-1], chans)])
        self.up = nn.ModuleList([_block(c_in, c_out) for c_in, c_out in zip(chans[:0:-1], chans[-2::-1])])
        self.head = nn.Conv2d(chans[0], 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.down):
            x = block(F.max_pool2d(x, 2) if i else x)
        for block in self.up:
            x = block(_up(x))
        return self.head(x)


class Discriminative(nn.Module):
    """U-Net on the concatenated input and reconstruction: ``[N, 6, H, W] -> [N, 2, H, W]`` logits.

    Args:
        width: channels of the first level; each deeper level doubles them.
        depth: levels (``depth - 1`` poolings).
    """

    def __init__(self, width: int, depth: int):
        super().__init__()
        chans = [width * 2**i for i in range(depth)]
        self.down = nn.ModuleList([_block(c_in, c_out) for c_in, c_out in zip([6] + chans[:-1], chans)])
        pairs = zip(chans[:0:-1], chans[-2::-1])
        self.up = nn.ModuleList([_block(c_deep + c_skip, c_skip) for c_deep, c_skip in pairs])
        self.head = nn.Conv2d(chans[0], 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        for block, skip in zip(self.up, skips[-2::-1]):
            x = block(torch.cat([_up(x), skip], dim=1))
        return self.head(x)
