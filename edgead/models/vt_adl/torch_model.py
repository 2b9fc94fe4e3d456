"""VT-ADL (Mishra et al., "VT-ADL: A Vision Transformer Network for Image Anomaly Detection and Localization",
ISIE 2021) as a plain module.

The image is cut into ``patch_size`` patches (a strided convolution = linear patch embedding), a learned positional
embedding is added and a pre-norm ViT encoder runs over the patches. Two heads read the encoded patches:

* reconstruction: each patch is projected to a ``rec_channels`` reconstruction vector, laid out on the patch grid
  and decoded by transposed convolutions (stride 2 each, ``log2(patch_size)`` of them) with a tanh output;
* a mixture density network (``mdn.py``) models the distribution of the encoded patches; its per-patch negative
  log-likelihood is the anomaly map (upsampled bilinearly to the input).

Choices the paper leaves open (documented here):

* backbone: none (the ViT is trained from scratch, as in the paper); ``self.backbone`` (EfficientNet-Lite0) is kept
  only for its normalisation constants, which the SDK's preprocessing uses. It is not in the forward pass.
* reconstruction target: the ``[0, 1]`` image mapped to ``[-1, 1]`` (``2 * (x * std + mean) - 1``, equal to the
  normalised input for Lite0's mean = std = 0.5) so that tanh covers it; MSE on that scale, SSIM on ``[0, 1]``.
* the encoder's final LayerNorm has no affine parameters, so the embeddings cannot shrink to cheat the density.
* MDN noise ``N(0, 0.2)`` is added to the MDN's input only in training (``losses``), never in ``forward``.
* image score = ``max_p NLL_p + 5 * MSE + 0.5 * (1 - SSIM)``: the training loss with its mean patch NLL replaced by
  the worst patch's NLL, so a single anomalous patch raises the score.
* defaults are far smaller than the paper (dim 64, depth 3, 4 heads, 20 epochs) so it trains in minutes on 2 CPU
  cores; the input sides must be multiples of ``patch_size``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from edgead.errors import ConfigError
from edgead.models.backbone import Backbone, build_backbone
from edgead.models.common import check_input_hw
from edgead.models.losses import ssim_map
from edgead.models.vt_adl.mdn import MixtureDensityNetwork
from edgead.models.training import TrainedStateMixin

MSE_WEIGHT = 5.0
SSIM_WEIGHT = 0.5


class Attention(nn.Module):
    """Multi-head self-attention written out (Linear/MatMul/Softmax) so the exported graph has no fused ops."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, p, d = x.shape
        qkv = self.qkv(x).reshape(n, p, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(self.head_dim)), dim=-1)
        return self.out((attn @ v).transpose(1, 2).reshape(n, p, d))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _decoder(in_channels: int, stages: int) -> nn.Sequential:
    layers, c = [], in_channels
    for _ in range(stages):
        out = max(c // 2, 16)
        layers += [nn.ConvTranspose2d(c, out, 4, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        c = out
    layers += [nn.Conv2d(c, 3, 3, padding=1), nn.Tanh()]
    return nn.Sequential(*layers)


class VTADL(TrainedStateMixin, nn.Module):
    """VT-ADL. ``forward(x) -> (raw_score [N], raw_map [N, H, W])`` on normalised ``[N, 3, H, W]`` input.

    Args:
        input_hw: model resolution ``(height, width)``, multiples of ``patch_size``.
        backbone: backbone whose normalisation the input uses (not run).
        patch_size: patch side in pixels (a power of 2).
        dim: embedding dimension.
        depth: transformer blocks.
        heads: attention heads (divides ``dim``).
        mlp_ratio: MLP hidden size / ``dim``.
        rec_channels: reconstruction vector size per patch.
        n_gaussians: MDN mixture components.
        mdn_noise: std of the Gaussian noise on the MDN input in training.
        epochs: training epochs (``train.fit``).
        lr: Adam learning rate (``train.fit``).
        seed: seed of the initialisation and the training noise.
        pretrained: load the backbone's weights (only their sha is recorded; ``False`` for shape tests).

    Raises:
        ConfigError: if a parameter is out of range.

    Example:
        >>> model = VTADL((128, 160))                       # doctest: +SKIP
        >>> fit(model, batches); score, amap = model(x)     # doctest: +SKIP
    """

    checks_backbone = False  # the backbone is not run: its sha256 is informative only


    def __init__(self, input_hw: Sequence[int], backbone: str = "efficientnet_lite0", patch_size: int = 16,
                 dim: int = 64, depth: int = 3, heads: int = 4, mlp_ratio: int = 2, rec_channels: int = 64,
                 n_gaussians: int = 150, mdn_noise: float = 0.2, epochs: int = 20, lr: float = 1e-3, seed: int = 0,
                 pretrained: bool = True):
        super().__init__()
        patch_size = int(patch_size)
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ConfigError(f"VT-ADL patch_size={patch_size} must be a power of 2 (>= 2)")
        self.input_hw = check_input_hw(input_hw, patch_size)
        if self.input_hw[0] % patch_size or self.input_hw[1] % patch_size:
            raise ConfigError(f"VT-ADL input_hw {self.input_hw} must be multiples of patch_size={patch_size}",
                              hint="use --image-size with multiples of 32, or a smaller patch_size")
        if int(dim) % int(heads):
            raise ConfigError(f"VT-ADL dim={dim} must be divisible by heads={heads}")
        if int(epochs) < 1 or float(lr) <= 0 or int(n_gaussians) < 1:
            raise ConfigError(f"VT-ADL needs epochs >= 1, lr > 0, n_gaussians >= 1 (got {epochs}, {lr}, {n_gaussians})")
        torch.manual_seed(int(seed))
        self.backbone: Backbone = build_backbone(backbone, pretrained=pretrained)
        self.grid_hw = (self.input_hw[0] // patch_size, self.input_hw[1] // patch_size)
        n_patches = self.grid_hw[0] * self.grid_hw[1]
        self.embed = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.randn(1, n_patches, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.project = nn.Linear(dim, rec_channels)
        self.decoder = _decoder(rec_channels, int(math.log2(patch_size)))
        self.mdn = MixtureDensityNetwork(dim, n_gaussians)
        self.register_buffer("unit_scale", torch.tensor(self.backbone.std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("unit_shift", torch.tensor(self.backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.epochs, self.lr, self.mdn_noise, self.seed = int(epochs), float(lr), float(mdn_noise), int(seed)
        self._params = {
            "input_hw": list(self.input_hw), "backbone": backbone, "patch_size": patch_size, "dim": int(dim),
            "depth": int(depth), "heads": int(heads), "mlp_ratio": int(mlp_ratio), "rec_channels": int(rec_channels),
            "n_gaussians": int(n_gaussians), "mdn_noise": self.mdn_noise, "epochs": self.epochs, "lr": self.lr,
            "seed": self.seed, "pretrained": bool(pretrained),
        }

    # -- parts ------------------------------------------------------------------------------------------------
    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction target: the ``[0, 1]`` image mapped to ``[-1, 1]``."""
        return 2.0 * (x * self.unit_scale + self.unit_shift) - 1.0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded patches ``[N, P, dim]`` (row-major patch grid)."""
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.norm(self.blocks(tokens))

    def reconstruct(self, encoded: torch.Tensor) -> torch.Tensor:
        """Reconstruction in ``[-1, 1]``: ``[N, 3, H, W]``."""
        grid = self.project(encoded).transpose(1, 2).reshape(encoded.shape[0], -1, *self.grid_hw)
        return self.decoder(grid)

    def _reconstruction_terms(self, x: torch.Tensor, recon: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = self.target(x)
        mse = (recon - target).pow(2).mean(dim=(1, 2, 3))
        ssim = ssim_map((recon + 1.0) * 0.5, (target + 1.0) * 0.5).mean(dim=(1, 2))
        return mse, ssim

    # -- training ---------------------------------------------------------------------------------------------
    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss terms of a batch: ``nll`` (mean patch NLL with noisy MDN input), ``mse``, ``ssim``,
        ``total = nll + 5 mse + 0.5 (1 - ssim)``."""
        encoded = self.encode(x)
        nll = self.mdn.nll(encoded + self.mdn_noise * torch.randn_like(encoded), encoded).mean()
        mse, ssim = self._reconstruction_terms(x, self.reconstruct(encoded))
        mse, ssim = mse.mean(), ssim.mean()
        return {"nll": nll, "mse": mse, "ssim": ssim, "total": nll + MSE_WEIGHT * mse + SSIM_WEIGHT * (1.0 - ssim)}

    # -- inference --------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a normalised batch.

        Args:
            x: ``[N, 3, H, W]`` float32 at ``input_hw``, normalised with the backbone's mean/std.

        Returns:
            ``(raw_score [N], raw_map [N, H, W])``: ``max NLL + 5 MSE + 0.5 (1 - SSIM)`` and the upsampled
            per-patch NLL.
        """
        encoded = self.encode(x)
        nll = self.mdn.nll(encoded, encoded)  # [N, P]
        mse, ssim = self._reconstruction_terms(x, self.reconstruct(encoded))
        score = nll.max(dim=1).values + MSE_WEIGHT * mse + SSIM_WEIGHT * (1.0 - ssim)
        amap = F.interpolate(nll.reshape(-1, 1, *self.grid_hw), size=self.input_hw, mode="bilinear",
                             align_corners=False)
        return score, amap[:, 0]

    # -- serialisation ----------------------------------------------------------------------------------------

