"""AE-kNN (Saeedi & Giusti: convolutional autoencoder + deep-feature one-class kNN) as a plain module.

1. The (station-aligned) image is downsized by ``downscale`` and cut into overlapping ``patch_size`` patches every
   ``stride`` pixels (in-graph, ``patches.py``); each patch is reconstructed by a conditional sparse autoencoder
   (``autoencoder.py``) that receives the patch's normalised (row, column) index.
2. The patches are stitched back (overlaps averaged) and upsized bilinearly to the input size; the anomaly map is
   the per-pixel absolute difference to the input on the ``[0, 1]`` scale, averaged over channels (then Gaussian
   smoothed with ``sigma_px``). That map is ``raw_map``.
3. The map, divided by ``map_scale`` (the mean per-image maximum of the training maps) and given to all three
   channels, is embedded by the frozen backbone layer ``embed_layer``, pooled by a concatenation of parallel and
   cascaded poolings (global max, global average, and 2x2 max pooling followed by global average: 3x the
   features of global max pooling), standardised with the training mean/std, and scored as the mean squared
   Euclidean distance to its ``k = min(num_neighbors, n_train)`` nearest training embeddings (the paper's k: 15).

Choices the paper leaves open (documented here): the autoencoder reconstructs the normalised input patches (MSE
in that scale) with ``lambda`` = ``l1_weight`` on the mean absolute hidden activation; widths 32/64/64, a
64-unit ReLU bottleneck, 32 px patches at stride 16 on the half-size image; the backbone is EfficientNet-Lite0
(the paper used ImageNet CNNs we cannot load); 30 epochs of Adam (lr 1e-3) so it trains in minutes on 2 cores.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from edgead.errors import ConfigError
from edgead.models.ae_knn.autoencoder import N_CONV, ConditionalAutoencoder
from edgead.models.ae_knn.patches import PatchGrid
from edgead.models.backbone import Backbone, build_backbone
from edgead.models.common import (Brightness, GaussianSmoothing, check_input_hw, level_brightness, parse_brightness,
                                  squared_distances)
from edgead.models.training import TrainedStateMixin

PAPER_K = 15


class AeKnn(TrainedStateMixin, nn.Module):
    """AE-kNN. ``forward(x) -> (raw_score [N], raw_map [N, H, W])`` on normalised ``[N, 3, H, W]`` input.

    Args:
        input_hw: model resolution ``(height, width)``; multiples of ``downscale * stride``.
        backbone: key of ``edgead.models.backbone.BACKBONES``.
        embed_layer: backbone layer that embeds the anomaly map.
        patch_size: patch side at the working resolution (multiple of ``stride`` and of 8).
        stride: patch step.
        downscale: integer factor from the input to the autoencoder's working resolution.
        width: autoencoder conv width.
        hidden: bottleneck size.
        l1_weight: sparsity weight ``lambda`` on the hidden activations.
        num_neighbors: k of the kNN score (capped by the number of training images).
        sigma_px: Gaussian smoothing of the map.
        epochs: autoencoder training epochs.
        lr: Adam learning rate.
        seed: seed of the initialisation.
        pretrained: load the backbone's pretrained weights (``False`` only for tests).
        bank_size: rows of the (empty) embedding bank; ``from_state`` sets it.
        brightness: :class:`~edgead.models.common.Brightness`: ``mean`` levels each image's mean grey first (in
            training and in the graph), ``keep`` does not.

    Raises:
        ConfigError: if a parameter is out of range.
    """

    def extra_params(self) -> dict:
        """The bank size (the bank buffer is sized by it)."""
        return {"bank_size": int(self.bank.shape[0])}


    def __init__(self, input_hw: Sequence[int], backbone: str = "efficientnet_lite0", embed_layer: str = "block4",
                 patch_size: int = 32, stride: int = 16, downscale: int = 2, width: int = 32, hidden: int = 64,
                 l1_weight: float = 1e-3, num_neighbors: int = PAPER_K, sigma_px: float = 4.0, epochs: int = 30,
                 lr: float = 1e-3, seed: int = 0, pretrained: bool = True, bank_size: int = 0,
                 brightness: Brightness | str = "keep"):
        super().__init__()
        self.brightness = parse_brightness(brightness, "AE-kNN")
        torch.manual_seed(int(seed))
        self.backbone: Backbone = build_backbone(backbone, pretrained=pretrained)
        if embed_layer not in self.backbone.channels:
            raise ConfigError(f"AE-kNN embed_layer {embed_layer!r} unknown",
                              hint=f"use one of {list(self.backbone.channels)}")
        patch_size, stride, downscale = int(patch_size), int(stride), int(downscale)
        if stride < 1 or downscale < 1 or patch_size % stride or patch_size % 2**N_CONV:
            raise ConfigError(f"AE-kNN patch_size={patch_size} must be a multiple of stride={stride} and of 8")
        self.input_hw = check_input_hw(input_hw, downscale * patch_size)
        if self.input_hw[0] % (downscale * stride) or self.input_hw[1] % (downscale * stride):
            raise ConfigError(f"AE-kNN input_hw {self.input_hw} must be multiples of downscale*stride="
                              f"{downscale * stride}", hint="use --image-size with multiples of 32")
        if int(num_neighbors) < 1 or int(epochs) < 1 or float(lr) <= 0:
            raise ConfigError("AE-kNN needs num_neighbors >= 1, epochs >= 1, lr > 0")
        self.backbone.fix_input_hw(self.input_hw)
        self.work_hw = (self.input_hw[0] // downscale, self.input_hw[1] // downscale)
        self.grid = PatchGrid(self.work_hw, patch_size, stride)
        self.autoencoder = ConditionalAutoencoder(patch_size, int(width), int(hidden))
        self.register_buffer("positions", self.grid.positions(), persistent=False)
        self.register_buffer("overlap", self.grid.overlap(), persistent=False)
        self.register_buffer("std", torch.tensor(self.backbone.std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("mean", torch.tensor(self.backbone.mean).view(1, 3, 1, 1), persistent=False)
        dim = 3 * self.backbone.channels[embed_layer]
        self.register_buffer("map_scale", torch.ones(()))
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_std", torch.ones(dim))
        self.register_buffer("bank", torch.zeros(int(bank_size), dim))
        self.smoothing = GaussianSmoothing(sigma_px, self.input_hw)
        embed_stride = self.backbone.strides[embed_layer]
        self._cascade = min(-(-side // embed_stride) for side in self.input_hw) >= 2  # room for a 2x2 max pool
        self.embed_layer, self.num_neighbors = embed_layer, int(num_neighbors)
        self.l1_weight, self.epochs, self.lr, self.seed = float(l1_weight), int(epochs), float(lr), int(seed)
        self._params = {
            "input_hw": list(self.input_hw), "backbone": backbone, "embed_layer": embed_layer,
            "patch_size": patch_size, "stride": stride, "downscale": downscale, "width": int(width),
            "hidden": int(hidden), "l1_weight": self.l1_weight, "num_neighbors": self.num_neighbors,
            "sigma_px": float(sigma_px), "epochs": self.epochs, "lr": self.lr, "seed": self.seed,
            "pretrained": bool(pretrained), "brightness": self.brightness.value,
        }

    def train(self, mode: bool = True) -> "AeKnn":
        """Train mode for the autoencoder; the backbone stays in eval mode."""
        super().train(mode)
        self.backbone.train(False)
        return self

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with its brightness levelled as ``brightness`` says."""
        return level_brightness(x, self.brightness, self.mean, self.std)

    # -- autoencoder ------------------------------------------------------------------------------------------
    def work_image(self, x: torch.Tensor) -> torch.Tensor:
        """The input at the autoencoder's working resolution."""
        if self.work_hw == self.input_hw:
            return x
        return F.interpolate(x, size=self.work_hw, mode="bilinear", align_corners=False)

    def reconstruct_patches(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, L, 3, p, p] -> (reconstructions [N, L, 3, p, p], hidden [N * L, hidden])``."""
        n, count = patches.shape[0], self.grid.count
        flat = patches.reshape(-1, 3, self.grid.patch, self.grid.patch)
        position = self.positions.unsqueeze(0).expand(n, -1, -1).reshape(-1, 2)
        recon, hidden = self.autoencoder(flat, position)
        return recon.reshape(n, count, 3, self.grid.patch, self.grid.patch), hidden

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Training loss of a batch: ``MSE(patches) + lambda * mean |hidden|``."""
        patches = self.grid.cut(self.work_image(self.level(x)))
        recon, hidden = self.reconstruct_patches(patches)
        return (recon - patches).pow(2).mean() + self.l1_weight * hidden.abs().mean()

    def anomaly_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel ``mean_c |unit(x) - unit(upsized stitched reconstruction)|``, smoothed: ``[N, H, W]`` (``x``
        levelled first, :meth:`level`)."""
        x = self.level(x)
        recon, _ = self.reconstruct_patches(self.grid.cut(self.work_image(x)))
        image = self.grid.stitch_sum(recon) / self.overlap
        if self.work_hw != self.input_hw:
            image = F.interpolate(image, size=self.input_hw, mode="bilinear", align_corners=False)
        diff = ((x - image).abs() * self.std).mean(dim=1, keepdim=True)
        return self.smoothing(diff)[:, 0]

    # -- one-class kNN ----------------------------------------------------------------------------------------
    def embed(self, amap: torch.Tensor) -> torch.Tensor:
        """Raw (unstandardised) embedding ``[N, 3 C]`` of anomaly maps ``[N, H, W]``."""
        gray = (amap / self.map_scale).unsqueeze(1).expand(-1, 3, -1, -1)
        f = self.backbone.features((gray - self.mean) / self.std, [self.embed_layer])[self.embed_layer]
        cascaded = F.max_pool2d(f, 2).mean(dim=(2, 3)) if self._cascade else f.mean(dim=(2, 3))  # static choice
        return torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3)), cascaded], dim=1)

    def set_bank(self, embeddings: torch.Tensor, map_scale: float) -> None:
        """Install the training embeddings (standardised here) and the map scale they were computed with."""
        self.map_scale = torch.tensor(float(map_scale), device=embeddings.device)
        self.feature_mean = embeddings.mean(dim=0)
        self.feature_std = embeddings.std(dim=0, unbiased=False).clamp_min(1e-6)
        self.bank = ((embeddings - self.feature_mean) / self.feature_std).contiguous()

    @property
    def k(self) -> int:
        """Neighbours used: ``min(num_neighbors, bank size)``."""
        return max(1, min(self.num_neighbors, int(self.bank.shape[0])))

    # -- inference --------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a normalised batch.

        Args:
            x: ``[N, 3, H, W]`` float32 at ``input_hw``, normalised with the backbone's mean/std.

        Returns:
            ``(raw_score [N], raw_map [N, H, W])``: the mean squared distance to the k nearest training
            embeddings, and the reconstruction-difference map.

        Raises:
            ConfigError: if the model is not fitted.
        """
        if self.bank.shape[0] == 0:
            raise ConfigError("AE-kNN has no training embeddings", hint="fit the model before scoring")
        amap = self.anomaly_map(x)
        emb = (self.embed(amap) - self.feature_mean) / self.feature_std
        dist2 = squared_distances(emb, self.bank)  # [N, M]
        score = dist2.topk(self.k, dim=1, largest=False).values.mean(dim=1)
        return score, amap

    # -- serialisation ----------------------------------------------------------------------------------------

