"""The conditional sparse convolutional autoencoder of AE-kNN (Saeedi & Giusti): strided-conv encoder, dense ReLU
bottleneck (the hidden activations carry the L1 sparsity penalty), transposed-conv decoder; the patch position is
concatenated as a condition to the encoder input (two constant planes) and to the code before decoding."""
from __future__ import annotations

import torch
from torch import nn

N_CONV = 3  # stride-2 stages: the patch side must be a multiple of 8


class ConditionalAutoencoder(nn.Module):
    """Args:
        patch: patch side (multiple of 8).
        width: channels of the first conv (then ``2 * width``, ``2 * width``).
        hidden: bottleneck size.
    """

    def __init__(self, patch: int, width: int, hidden: int):
        super().__init__()
        self.side = patch // 2**N_CONV
        self.top = 2 * width
        flat = self.top * self.side * self.side
        self.encoder = nn.Sequential(
            nn.Conv2d(5, width, 4, 2, 1), nn.ReLU(inplace=True), nn.Conv2d(width, self.top, 4, 2, 1),
            nn.ReLU(inplace=True), nn.Conv2d(self.top, self.top, 4, 2, 1), nn.ReLU(inplace=True), nn.Flatten(),
            nn.Linear(flat, hidden), nn.ReLU(inplace=True))
        self.expand = nn.Sequential(nn.Linear(hidden + 2, flat), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(self.top, self.top, 4, 2, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(self.top, width, 4, 2, 1), nn.ReLU(inplace=True), nn.ConvTranspose2d(width, 3, 4, 2, 1))

    def forward(self, patches: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct ``[B, 3, p, p]`` patches at normalised positions ``[B, 2]``.

        Returns:
            ``(reconstruction [B, 3, p, p], hidden activations [B, hidden])``.
        """
        planes = position[:, :, None, None].expand(-1, -1, patches.shape[2], patches.shape[3])
        hidden = self.encoder(torch.cat([patches, planes], dim=1))
        grid = self.expand(torch.cat([hidden, position], dim=1)).reshape(-1, self.top, self.side, self.side)
        return self.decoder(grid), hidden
