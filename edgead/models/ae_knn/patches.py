"""In-graph cutting of an image into overlapping patches and stitching them back, with static shapes.

Patches of side ``patch = m * stride`` at every ``stride`` are assembled from the ``stride x stride`` blocks of the
image (reshape + ``m^2`` slices + concat); stitching pads each of the ``m^2`` sub-blocks of every patch back to its
place, sums, and divides by the static overlap count. Only Reshape/Transpose/Slice/Concat/Pad/Div reach the
exported graph (``F.fold`` needs ONNX opset 18, and an identity-kernel convolution would weigh megabytes).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


class PatchGrid:
    """Patch geometry of a ``(height, width)`` image; both sides must be multiples of ``stride``.

    Args:
        image_hw: image size.
        patch: patch side (a multiple of ``stride``, ``<=`` both sides).
        stride: step between patches.
    """

    def __init__(self, image_hw: tuple[int, int], patch: int, stride: int):
        self.image_hw, self.patch, self.stride = image_hw, int(patch), int(stride)
        self.m = self.patch // self.stride
        self.blocks_hw = (image_hw[0] // stride, image_hw[1] // stride)
        self.grid_hw = (self.blocks_hw[0] - self.m + 1, self.blocks_hw[1] - self.m + 1)
        self.count = self.grid_hw[0] * self.grid_hw[1]

    def cut(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, L, C, patch, patch]`` (row-major patch order)."""
        n, c = x.shape[0], x.shape[1]
        (bh, bw), (gh, gw), s = self.blocks_hw, self.grid_hw, self.stride
        blocks = x.reshape(n, c, bh, s, bw, s).permute(0, 2, 4, 1, 3, 5)  # [N, bh, bw, C, s, s]
        rows = []
        for a in range(self.m):
            rows.append(torch.cat([blocks[:, a:a + gh, b:b + gw] for b in range(self.m)], dim=-1))
        patches = torch.cat(rows, dim=-2)  # [N, gh, gw, C, p, p]
        return patches.reshape(n, gh * gw, c, self.patch, self.patch)

    def stitch_sum(self, patches: torch.Tensor) -> torch.Tensor:
        """Sum of overlapping patches ``[N, L, C, p, p] -> [N, C, H, W]`` (divide by :meth:`overlap` to average)."""
        n, c = patches.shape[0], patches.shape[2]
        (gh, gw), s, m = self.grid_hw, self.stride, self.m
        grid = patches.reshape(n, gh, gw, c, self.patch, self.patch)
        out = None
        for a in range(m):
            for b in range(m):
                part = grid[..., a * s:(a + 1) * s, b * s:(b + 1) * s]  # [N, gh, gw, C, s, s]
                part = part.permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh * s, gw * s)
                part = F.pad(part, (b * s, (m - 1 - b) * s, a * s, (m - 1 - a) * s))
                out = part if out is None else out + part
        return out

    def overlap(self) -> torch.Tensor:
        """How many patches cover each pixel: ``[1, 1, H, W]``."""
        return self.stitch_sum(torch.ones(1, self.count, 1, self.patch, self.patch))

    def positions(self) -> torch.Tensor:
        """Normalised patch indices ``[L, 2]`` (row, column) in ``[0, 1]``."""
        gh, gw = self.grid_hw
        rows = torch.arange(gh, dtype=torch.float32) / max(gh - 1, 1)
        cols = torch.arange(gw, dtype=torch.float32) / max(gw - 1, 1)
        return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)
