"""Obvious synthetic defects for trained-model tests, whose models see the parts at a few dozen pixels.

The model tests' conftest defects (a 5-8 px blob, a 1.5 px scratch at 96 x 128) shrink to a few faint pixels at
the half or two-thirds resolution some tests train at: too little for a short training to separate on every CPU's
kernels. A foreign texture patch (random colour noise in a disc) is what anomaly simulators (DRAEM's) and real
contamination look like, and is separated by a margin that holds across kernels (docs/benchmarks.md, "Trained-model
tests across CPU kernels").
"""
from __future__ import annotations


def paste_foreign_patch(x, seed: int, radius: int = 8):
    """Each image of the normalised batch ``x`` ``[N, 3, H, W]`` (values about [-1, 1]) with a disc of random
    colour noise of ``radius`` px at a random place away from the border; returns a new tensor."""
    import torch

    h, w = x.shape[-2:]
    gen = torch.Generator().manual_seed(seed)
    out = x.clone()
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for i in range(out.shape[0]):
        cy = int(torch.randint(radius + 4, h - radius - 4, (1,), generator=gen))
        cx = int(torch.randint(radius + 4, w - radius - 4, (1,), generator=gen))
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        noise = torch.rand(3, h, w, generator=gen) * 2 - 1
        out[i][:, disc] = noise[:, disc]
    return out
