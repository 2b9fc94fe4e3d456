"""CapsNet's training losses: Sabour's margin loss and the inverse-frequency class weights. Training only."""
from __future__ import annotations

import torch
from torch.nn import functional as F

M_POS, M_NEG, LAMBDA = 0.9, 0.1, 0.5  # Sabour et al. 2017: m+ = 0.9, m- = 0.1, lambda = 0.5
N_CLASSES = 2  # normal, anomalous


def margin_loss(lengths: torch.Tensor, labels: torch.Tensor, m_pos: float = M_POS, m_neg: float = M_NEG,
                lam: float = LAMBDA) -> torch.Tensor:
    """Per-sample margin loss ``sum_k T_k max(0, m+ - |v_k|)^2 + lam (1 - T_k) max(0, |v_k| - m-)^2``.

    Args:
        lengths: output capsule lengths ``[N, K]`` (``|v_k|`` in [0, 1)).
        labels: class index per sample ``[N]`` (0 normal, 1 anomalous).
        m_pos: lower bound of the true class's length.
        m_neg: upper bound of the other classes' lengths.
        lam: down-weighting of the absent classes.

    Returns:
        ``[N]`` losses.

    Example:
        >>> margin_loss(torch.tensor([[0.5, 0.7]]), torch.tensor([1]))  # 0.5 * 0.4^2 + 0.2^2
        tensor([0.1200])
    """
    target = F.one_hot(labels.long(), lengths.shape[1]).to(lengths.dtype)
    present = target * torch.relu(m_pos - lengths) ** 2
    absent = lam * (1.0 - target) * torch.relu(lengths - m_neg) ** 2
    return (present + absent).sum(dim=1)


def inverse_frequency_weights(labels: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """Per-sample weights ``N / (K_present * N_c)``: each class present contributes the same share of the mean.

    Args:
        labels: class index per sample ``[N]``.
        n_classes: number of classes.

    Returns:
        ``[N]`` weights whose mean is 1.

    Example:
        >>> inverse_frequency_weights(torch.tensor([0, 0, 0, 1]))  # 3 good, 1 defect
        tensor([0.6667, 0.6667, 0.6667, 2.0000])
    """
    counts = torch.bincount(labels.long(), minlength=n_classes).to(torch.float32)
    present = float((counts > 0).sum())
    return labels.numel() / (present * counts[labels.long()])


def weighted_margin_loss(lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean margin loss with inverse-frequency class weights (scalar)."""
    return (margin_loss(lengths, labels) * inverse_frequency_weights(labels)).mean()
