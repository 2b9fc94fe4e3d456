"""PIADE (Mishra et al., "Image Anomaly Detection by Aggregating Deep Pyramidal Representations", IJNS 2020) as a
plain module.

Encoder: the pretrained backbone with a squeeze-and-excitation block (reduction 4) after each stage up to
``feature_layer``; an adaptive average pooling pyramid (8x8, 4x4, 2x2, 1x1), each level a 1x1 conv to 64 channels
+ BN, cut into 8-d capsules; dynamic routing (3 iterations, ``edgead.models.capsules``) to 2 instantiation vectors
in R^64. Decoder: vector 1 in training, the vector of larger norm at test (a ``where``, no control flow); a 3-layer
linear upsampler to a ``up_channels`` map on the feature grid, concatenated with the backbone features, and a
transposed-conv decoder (tanh) back to the input size.

Loss (weights 1): ``MSE + perceptual + (1 - SSIM)``; the perceptual term compares frozen early layers
(``perceptual_layers``, the plain backbone without SE) of the input and the reconstruction. The map is its
per-pixel counterpart (squared error + upsampled perceptual residual + 1 - SSIM map), whose image mean is (nearly)
the loss. The image score, :class:`ImageScore`:

* ``loss``: the paper's, the loss itself (the image mean of the map);
* ``map-max`` (the default of ``edgead train``): the maximum of the map after DRAEM's mean filter
  (``models.common.smoothed_max``, 21 px at 256 px). The mean dilutes a small defect over the whole part, so the
  paper's score is kept as an option only (the two scores compared: docs/benchmarks.md, "Figures behind code
  choices").

Choices the paper leaves open / changes (documented here):

* backbone: EfficientNet-Lite0 (the paper used ResNet18/VGG11/Xception, which we cannot load); SE blocks after
  stages ``block0`` .. ``feature_layer`` (default ``block4``, stride 16, 112 channels); the backbone stays frozen,
  the SE blocks, pyramid, capsules and decoder are trained.
* reconstruction target: the ``[0, 1]`` image mapped to ``[-1, 1]`` (tanh range; equal to the normalised input for
  Lite0); SSIM on ``[0, 1]``; the perceptual loss sees the reconstruction re-normalised for the backbone.
* defaults: 10 epochs, Adam lr 1e-3, so it trains in minutes on 2 CPU cores (the paper trains far longer).
"""
from __future__ import annotations

from enum import Enum
from typing import Sequence

import torch
from torch import nn

from edgead.errors import ConfigError
from edgead.models.backbone import Backbone, build_backbone
from edgead.models.capsules import CapsuleLayer
from edgead.models.common import (Brightness, check_feature_stage, check_input_hw, filter_size, level_brightness,
                                  parse_brightness, smoothed_max)
from edgead.models.losses import perceptual_map, ssim_map
from edgead.models.piade.parts import PoolingPyramid, SqueezeExcitation, transposed_decoder
from edgead.models.training import TrainedStateMixin

PYRAMID = (8, 4, 2, 1)


class ImageScore(str, Enum):
    """How the residual map becomes the image score."""

    LOSS = "loss"  # the paper: the image mean of the map, i.e. the loss
    MAP_MAX = "map-max"  # the maximum of the mean-filtered map (as DRAEM): a small defect is not averaged away


class Piade(TrainedStateMixin, nn.Module):
    """PIADE. ``forward(x) -> (raw_score [N], raw_map [N, H, W])`` on normalised ``[N, 3, H, W]`` input.

    Args:
        input_hw: model resolution ``(height, width)``; multiples of the feature stride.
        backbone: key of ``edgead.models.backbone.BACKBONES``.
        feature_layer: the deepest stage (``"block1"`` .. ``"block6"``).
        se_reduction: squeeze-and-excitation reduction.
        pyramid_channels: channels per pyramid level (64 in the paper).
        capsule_dim: input capsule size (8 in the paper).
        vector_dim: instantiation vector size (64 in the paper).
        routing_iterations: dynamic routing iterations (3).
        up_channels: channels of the linear upsampler's output map.
        decoder_width: channels of the first transposed conv.
        perceptual_layers: frozen early layers of the perceptual loss.
        image_score: :class:`ImageScore` (``loss`` here, for bundles written before it existed; ``edgead train``
            defaults to ``map-max``, see the registry).
        epochs: training epochs (``train.fit``).
        lr: Adam learning rate.
        seed: seed of the initialisation.
        pretrained: load the backbone's pretrained weights (``False`` only for tests).
        brightness: :class:`~edgead.models.common.Brightness`: ``mean`` levels each image's mean grey first (in
            training and in the graph; the reconstruction target is the levelled image), ``keep`` does not.

    Raises:
        ConfigError: if a parameter is out of range.
    """

    def __init__(self, input_hw: Sequence[int], backbone: str = "efficientnet_lite0", feature_layer: str = "block4",
                 se_reduction: int = 4, pyramid_channels: int = 64, capsule_dim: int = 8, vector_dim: int = 64,
                 routing_iterations: int = 3, up_channels: int = 16, decoder_width: int = 64,
                 perceptual_layers: Sequence[str] = ("stem", "block1"), image_score: ImageScore | str = "loss",
                 epochs: int = 10, lr: float = 1e-3, seed: int = 0, pretrained: bool = True,
                 brightness: Brightness | str = "keep"):
        super().__init__()
        self.brightness = parse_brightness(brightness, "PIADE")
        try:
            self.image_score = ImageScore(image_score)
        except ValueError:
            raise ConfigError(f"PIADE image_score {image_score!r} unknown",
                              hint=f"use one of {[s.value for s in ImageScore]}") from None
        torch.manual_seed(int(seed))
        self.backbone: Backbone = build_backbone(backbone, pretrained=pretrained)
        stages = check_feature_stage(self.backbone, feature_layer, "PIADE")
        self.perceptual_layers = [str(name) for name in perceptual_layers]
        unknown = [name for name in self.perceptual_layers if name not in self.backbone.channels]
        if unknown or not self.perceptual_layers:
            raise ConfigError(f"PIADE perceptual_layers {list(perceptual_layers)} invalid",
                              hint="e.g. ['stem', 'block1']")
        stride = self.backbone.strides[feature_layer]
        self.input_hw = check_input_hw(input_hw, stride)
        if self.input_hw[0] % stride or self.input_hw[1] % stride or stride & (stride - 1):
            raise ConfigError(f"PIADE input_hw {self.input_hw} must be multiples of the {feature_layer} "
                              f"stride {stride}")
        if pyramid_channels % capsule_dim or int(epochs) < 1 or float(lr) <= 0:
            raise ConfigError("PIADE needs pyramid_channels divisible by capsule_dim, epochs >= 1 and lr > 0")
        self.backbone.fix_input_hw(self.input_hw)
        self.n_stages = stages.index(feature_layer) + 1
        self.se = nn.ModuleList(SqueezeExcitation(self.backbone.channels[name], se_reduction)
                                for name in stages[: self.n_stages])
        channels = self.backbone.channels[feature_layer]
        self.grid_hw = (self.input_hw[0] // stride, self.input_hw[1] // stride)
        self.pyramid = PoolingPyramid(channels, self.grid_hw, PYRAMID, pyramid_channels, capsule_dim)
        self.capsules = CapsuleLayer(self.pyramid.n_capsules, capsule_dim, 2, vector_dim, routing_iterations)
        self.up_channels = int(up_channels)
        cells = self.up_channels * self.grid_hw[0] * self.grid_hw[1]
        self.upsampler = nn.Sequential(nn.Linear(vector_dim, 256), nn.ReLU(inplace=True), nn.Linear(256, 512),
                                       nn.ReLU(inplace=True), nn.Linear(512, cells))
        self.decoder = transposed_decoder(channels + self.up_channels, stride.bit_length() - 1, decoder_width)
        self.register_buffer("mean", torch.tensor(self.backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.backbone.std).view(1, 3, 1, 1), persistent=False)
        self.filter_px = filter_size(self.input_hw)
        self.epochs, self.lr, self.seed = int(epochs), float(lr), int(seed)
        self._params = {
            "input_hw": list(self.input_hw), "backbone": backbone, "feature_layer": feature_layer,
            "se_reduction": int(se_reduction), "pyramid_channels": int(pyramid_channels),
            "capsule_dim": int(capsule_dim), "vector_dim": int(vector_dim),
            "routing_iterations": int(routing_iterations), "up_channels": self.up_channels,
            "decoder_width": int(decoder_width), "perceptual_layers": list(self.perceptual_layers),
            "image_score": self.image_score.value, "epochs": self.epochs, "lr": self.lr, "seed": self.seed, "pretrained": bool(pretrained),
            "brightness": self.brightness.value,
        }

    # -- parts ------------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Piade":
        """Train mode for the trained parts; the backbone stays in eval mode."""
        super().train(mode)
        self.backbone.train(False)
        return self

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [N, C, h, w], instantiation vectors [N, 2, vector_dim])``."""
        f = self.backbone.net.stem(x)
        for stage, se in zip(self.backbone.net.blocks, self.se):
            f = se(stage(f))
        return f, self.capsules(self.pyramid(f))

    def decode(self, features: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        """Reconstruction in ``[-1, 1]`` from the backbone features and one instantiation vector ``[N, D]``."""
        up = self.upsampler(vector).reshape(-1, self.up_channels, *self.grid_hw)
        return self.decoder(torch.cat([up, features], dim=1))

    def residual_maps(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """Per-pixel ``squared error + perceptual residual + (1 - SSIM)``: ``[N, H, W]``."""
        unit = x * self.std + self.mean
        target = 2.0 * unit - 1.0
        squared = (recon - target).pow(2).mean(dim=1)
        recon_unit = (recon + 1.0) * 0.5
        perceptual = perceptual_map(self.backbone, x, (recon_unit - self.mean) / self.std, self.perceptual_layers)
        return squared + perceptual + (1.0 - ssim_map(recon_unit, unit))

    # -- training ---------------------------------------------------------------------------------------------
    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Training loss of a batch: the mean residual map, decoding instantiation vector 1."""
        x = level_brightness(x, self.brightness, self.mean, self.std)
        features, vectors = self.encode(x)
        return self.residual_maps(x, self.decode(features, vectors[:, 0])).mean()

    # -- inference --------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a normalised batch.

        Args:
            x: ``[N, 3, H, W]`` float32 at ``input_hw``, normalised with the backbone's mean/std.

        Returns:
            ``(raw_score [N], raw_map [N, H, W])``: the image score (:class:`ImageScore`) and the per-pixel
            ``MSE + perceptual + (1 - SSIM)`` map.
        """
        x = level_brightness(x, self.brightness, self.mean, self.std)
        features, vectors = self.encode(x)
        norms = vectors.norm(dim=-1)  # [N, 2]
        second = (norms[:, 1] > norms[:, 0]).to(vectors.dtype).unsqueeze(-1)
        vector = vectors[:, 0] * (1.0 - second) + vectors[:, 1] * second
        amap = self.residual_maps(x, self.decode(features, vector))
        if self.image_score is ImageScore.MAP_MAX:
            return smoothed_max(amap, self.filter_px), amap
        return amap.mean(dim=(1, 2)), amap

    # -- serialisation ----------------------------------------------------------------------------------------

