"""DRAEM's training losses: SSIM (Gaussian window 11, sigma 1.5) + L2 for the reconstruction, focal loss for the
segmentation. Training only: nothing here is in the exported graph."""
from __future__ import annotations

import torch
from torch.nn import functional as F

FOCAL_GAMMA = 2.0  # the paper's focal loss gamma
SSIM_WINDOW = 11  # the usual SSIM window (Wang et al. 2004)


def ssim(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Mean structural similarity of two ``[N, C, H, W]`` images with values in ``[0, data_range]``."""
    x = torch.arange(-(SSIM_WINDOW // 2), SSIM_WINDOW // 2 + 1, dtype=a.dtype, device=a.device)
    kernel_1d = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel_1d = kernel_1d / kernel_1d.sum()
    channels = a.shape[1]
    kernel = (kernel_1d[:, None] * kernel_1d[None, :]).expand(channels, 1, -1, -1)
    pad = kernel.shape[-1] // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (pad,) * 4, mode="reflect"), kernel, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return value.mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Focal loss ``-(1 - p_t)^gamma log p_t`` of 2-class logits ``[N, 2, H, W]`` and a 0/1 mask ``[N, H, W]``."""
    log_p = F.log_softmax(logits, dim=1).gather(1, target.long().unsqueeze(1)).squeeze(1)
    return (-((1.0 - log_p.exp()) ** gamma) * log_p).mean()
