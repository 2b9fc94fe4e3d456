"""Pretrained, frozen feature extractors. One table, :data:`BACKBONES`, so more can follow.

Example:
    >>> bb = build_backbone("efficientnet_lite0")                      # doctest: +SKIP
    >>> feats = bb.features(x, ["block2", "block4"])                   # doctest: +SKIP
    >>> feats["block2"].shape[1] == bb.channels["block2"]              # doctest: +SKIP
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from edgead.errors import ConfigError
from edgead.models.backbone.efficientnet_lite import (LITE0_STAGES, LITE1_STAGES, LITE2_STAGES, STEM_CHANNELS,
                                                      EfficientNetLite)
from edgead.models.backbone.weights import lite_checkpoint_path, load_in_order


def _lite_layers(stages) -> tuple[dict[str, int], dict[str, int]]:
    channels, strides = {"stem": STEM_CHANNELS}, {"stem": 2}
    stride = 2
    for i, spec in enumerate(stages):
        stride *= spec.stride
        channels[f"block{i}"] = spec.out_channels
        strides[f"block{i}"] = stride
    return channels, strides


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone: how to build the network, where its weights are, and its feature layers.

    Attributes:
        build: makes the (untrained) network; it must have ``stem``, ``blocks`` and ``fix_input_hw``.
        weights_path: returns the checkpoint path (raises ``MissingExtraError`` if the package is absent).
        mean: per-channel mean of a [0, 1] RGB input.
        std: per-channel std of a [0, 1] RGB input.
        channels: output channels per layer name.
        strides: output stride per layer name.
        description: one line.
    """

    build: Callable[[], nn.Module]
    weights_path: Callable[[], Path]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channels: dict[str, int]
    strides: dict[str, int]
    description: str


def _lite(variant: int, stages, description: str) -> BackboneSpec:
    channels, strides = _lite_layers(stages)
    return BackboneSpec(
        build=partial(EfficientNetLite, stages),
        weights_path=partial(lite_checkpoint_path, variant),
        mean=(0.5, 0.5, 0.5),  # timm tf_efficientnet_lite*: (x - 127.5) / 127.5; checked on ImageNet samples
        std=(0.5, 0.5, 0.5),
        channels=channels,
        strides=strides,
        description=description,
    )


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": _lite(0, LITE0_STAGES, "EfficientNet-Lite0 (ImageNet, TF weights): no SE, ReLU6, "
                                "quantisation-friendly; 4.7 M parameters, trained at 224 px"),
    "efficientnet_lite1": _lite(1, LITE1_STAGES, "EfficientNet-Lite1 (ImageNet, TF weights): Lite0 deeper (stages "
                                "of 3/3/4/4/5 blocks); 5.4 M parameters, trained at 240 px"),
    "efficientnet_lite2": _lite(2, LITE2_STAGES, "EfficientNet-Lite2 (ImageNet, TF weights): Lite1 wider (48/88/120/"
                                "208/352 channels); 6.1 M parameters, trained at 260 px"),
}


class Backbone(nn.Module):
    """A frozen, eval-mode feature extractor with its normalisation.

    Attributes:
        name: key in :data:`BACKBONES`.
        mean: per-channel mean of a [0, 1] RGB input (tuple of 3 floats).
        std: per-channel std of a [0, 1] RGB input.
        channels: output channels per layer name (``"stem"``, ``"block0"`` .. ``"block6"``).
        strides: output stride per layer name.
        weights_sha256: sha256 of the loaded checkpoint, ``None`` for random weights.
    """

    def __init__(self, name: str, net: nn.Module, spec: BackboneSpec, weights_sha256: str | None):
        super().__init__()
        self.name = name
        self.net = net
        self.mean = spec.mean
        self.std = spec.std
        self.channels = dict(spec.channels)
        self.strides = dict(spec.strides)
        self.weights_sha256 = weights_sha256
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "Backbone":
        """Stay in eval mode: the backbone is frozen (BatchNorm uses its running statistics)."""
        return super().train(False)

    def fix_input_hw(self, input_hw: tuple[int, int] | None) -> None:
        """Make the padding constants for a static input size (see ``EfficientNetLite.fix_input_hw``)."""
        self.net.fix_input_hw(input_hw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[N, 1000]`` of a normalised ``[N, 3, H, W]`` input."""
        return self.net(x)

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Feature maps of the requested layers; computation stops after the deepest one.

        Args:
            x: normalised input ``[N, 3, H, W]``.
            layers: names among :attr:`channels` (``"stem"``, ``"block0"`` .. ``"block6"``).

        Returns:
            ``{name: [N, channels[name], ceil(H / stride), ceil(W / stride)]}``.

        Raises:
            ConfigError: if a layer name is unknown.
        """
        unknown = [name for name in layers if name not in self.channels]
        if unknown:
            raise ConfigError(f"backbone {self.name!r} has no layer {unknown[0]!r}", hint=f"use one of {list(self.channels)}")
        wanted = set(layers)
        order = list(self.channels)
        deepest = max(order.index(name) for name in layers)
        out = {}
        x = self.net.stem(x)
        if "stem" in wanted:
            out["stem"] = x
        for i, stage in enumerate(self.net.blocks):
            if i + 1 > deepest:
                break
            x = stage(x)
            if f"block{i}" in wanted:
                out[f"block{i}"] = x
        return out


def build_backbone(name: str = "efficientnet_lite0", pretrained: bool = True) -> Backbone:
    """Build a frozen backbone, with its pretrained weights by default.

    Args:
        name: key in :data:`BACKBONES`.
        pretrained: load the pretrained weights (``False``: random weights, for shape-only tests).

    Returns:
        The :class:`Backbone`, in eval mode with gradients off.

    Raises:
        ConfigError: if the name is unknown.
        MissingExtraError: if the weights package is not installed (extra ``train``).
        EdgeadError: if the weights file does not fit the layout.
    """
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}", hint=f"use one of {sorted(BACKBONES)}")
    spec = BACKBONES[name]
    net = spec.build()
    sha = load_in_order(net, spec.weights_path()) if pretrained else None
    return Backbone(name, net, spec, sha)


__all__ = ["BACKBONES", "Backbone", "BackboneSpec", "build_backbone"]
