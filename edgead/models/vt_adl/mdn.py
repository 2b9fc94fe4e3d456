"""Mixture density network over patch embeddings (Bishop 1994), as used by VT-ADL.

For an embedding ``h`` the network predicts a Gaussian mixture ``sum_k pi_k N(mu_k, diag(sigma_k^2))`` (softmax
weights, softplus sigmas, linear means) and scores ``-log p(h)``. The log-likelihood uses a max-shifted
log-sum-exp written out as ReduceMax/Exp/ReduceSum/Log so the exported graph is stable for any magnitude.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOG_2PI = math.log(2.0 * math.pi)


def log_sum_exp(a: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log(sum(exp(a)))`` over ``dim``, shifted by the maximum (no overflow, exact gradient)."""
    peak = a.max(dim=dim).values.detach()
    return peak + torch.log(torch.exp(a - peak.unsqueeze(dim)).sum(dim=dim))


def mixture_log_likelihood(z: torch.Tensor, log_pi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor
                           ) -> torch.Tensor:
    """Log-density of ``z`` under a diagonal Gaussian mixture.

    Args:
        z: points ``[..., D]``.
        log_pi: log mixture weights ``[..., K]`` (log-softmax).
        mu: means ``[..., K, D]``.
        sigma: standard deviations ``[..., K, D]`` (> 0).

    Returns:
        ``log p(z)``: ``[...]``.

    Example:
        >>> z = torch.zeros(1, 2); mu = torch.zeros(1, 1, 2); sigma = torch.ones(1, 1, 2)
        >>> float(mixture_log_likelihood(z, torch.zeros(1, 1), mu, sigma))  # -log(2 pi)
        -1.8378770351409912
    """
    scaled = (z.unsqueeze(-2) - mu) / sigma
    component = (-0.5 * scaled * scaled - torch.log(sigma)).sum(dim=-1) - 0.5 * LOG_2PI * z.shape[-1]
    return log_sum_exp(log_pi + component, dim=-1)


class MixtureDensityNetwork(nn.Module):
    """Linear heads predicting a ``n_gaussians``-component diagonal mixture over ``dim``-dimensional embeddings.

    Args:
        dim: embedding (input and target) dimension.
        n_gaussians: mixture components (the VT-ADL thesis uses 150).
        min_sigma: added to the softplus so the density stays bounded.
    """

    def __init__(self, dim: int, n_gaussians: int, min_sigma: float = 1e-2):
        super().__init__()
        self.dim, self.n_gaussians, self.min_sigma = int(dim), int(n_gaussians), float(min_sigma)
        self.pi = nn.Linear(dim, n_gaussians)
        self.mu = nn.Linear(dim, n_gaussians * dim)
        self.sigma = nn.Linear(dim, n_gaussians * dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_pi [..., K], mu [..., K, D], sigma [..., K, D])`` of embeddings ``h [..., D]``."""
        shape = (*h.shape[:-1], self.n_gaussians, self.dim)
        log_pi = F.log_softmax(self.pi(h), dim=-1)
        mu = self.mu(h).reshape(shape)
        sigma = F.softplus(self.sigma(h)).reshape(shape) + self.min_sigma
        return log_pi, mu, sigma

    def nll(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``-log p(target | mixture(h))``: ``[...]``."""
        return -mixture_log_likelihood(target, *self(h))
