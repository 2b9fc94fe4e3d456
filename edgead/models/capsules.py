"""Capsule building blocks (Sabour et al., "Dynamic Routing Between Capsules", NeurIPS 2017), generic.

``squash`` and ``dynamic_routing`` work on any number of input/output capsules and dimensions; the routing loop has
a fixed iteration count, so it unrolls into a static ONNX graph (no Loop node). :class:`CapsuleLayer` adds the
learned transformation matrices ``W_ij`` that map input capsule ``i`` to its prediction for output capsule ``j``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

SQUASH_EPS = 1e-8


def squash(s: torch.Tensor, dim: int = -1, eps: float = SQUASH_EPS) -> torch.Tensor:
    """``v = |s|^2 / (1 + |s|^2) * s / |s|``: keeps the direction, maps the length into [0, 1).

    Args:
        s: capsule vectors (any shape).
        dim: the capsule dimension.
        eps: added under the square root so that ``s = 0`` gives ``v = 0``.

    Returns:
        Same shape as ``s``.

    Example:
        >>> squash(torch.tensor([3.0, 4.0]))  # 25/26 * (0.6, 0.8)
        tensor([0.5769, 0.7692])
    """
    sq = (s * s).sum(dim=dim, keepdim=True)
    return s * (sq / (1.0 + sq) / torch.sqrt(sq + eps))


def dynamic_routing(u_hat: torch.Tensor, iterations: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Routing by agreement.

    ``b_ij = 0``; repeat: ``c_ij = softmax_j(b_ij)``, ``s_j = sum_i c_ij u_hat_ij``, ``v_j = squash(s_j)``,
    ``b_ij += u_hat_ij . v_j`` (not after the last iteration).

    Args:
        u_hat: predictions ``[N, I, J, D]`` of each input capsule ``i`` for each output capsule ``j``.
        iterations: routing iterations (>= 1; the paper uses 3).

    Returns:
        ``(v [N, J, D], c [N, I, J])``: output capsules and the final coupling coefficients.

    Raises:
        ValueError: if ``iterations < 1``.
    """
    if iterations < 1:
        raise ValueError(f"dynamic routing needs at least 1 iteration, got {iterations}")
    logits = torch.zeros_like(u_hat[..., 0])  # [N, I, J]
    for it in range(iterations):
        coupling = torch.softmax(logits, dim=2)
        v = squash((coupling.unsqueeze(-1) * u_hat).sum(dim=1))  # [N, J, D]
        if it < iterations - 1:
            logits = logits + (u_hat * v.unsqueeze(1)).sum(dim=-1)
    return v, coupling


class CapsuleLayer(nn.Module):
    """Fully connected capsule layer with dynamic routing.

    Args:
        in_caps: number of input capsules ``I``.
        in_dim: input capsule dimension.
        out_caps: number of output capsules ``J``.
        out_dim: output capsule dimension.
        iterations: routing iterations.

    Example:
        >>> layer = CapsuleLayer(680, 8, 2, 64)
        >>> layer(torch.randn(4, 680, 8)).shape
        torch.Size([4, 2, 64])
    """

    def __init__(self, in_caps: int, in_dim: int, out_caps: int, out_dim: int, iterations: int = 3):
        super().__init__()
        self.iterations = int(iterations)
        std = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.randn(in_caps, out_caps, out_dim, in_dim) * std)

    def predictions(self, u: torch.Tensor) -> torch.Tensor:
        """``u_hat_ij = W_ij u_i``: ``[N, I, in_dim] -> [N, I, J, out_dim]`` (one batched MatMul)."""
        return torch.matmul(self.weight.unsqueeze(0), u[:, :, None, :, None]).squeeze(-1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Output capsules ``[N, J, out_dim]`` of input capsules ``[N, I, in_dim]``."""
        return dynamic_routing(self.predictions(u), self.iterations)[0]


__all__ = ["CapsuleLayer", "dynamic_routing", "squash"]
