"""CapsNet for highly imbalanced labels (after Sabour et al., "Dynamic Routing Between Capsules", NeurIPS 2017) as a
plain module.

Path: the pretrained EfficientNet-Lite0 up to ``feature_layer`` (frozen; default ``block3``, stride 16, 80
channels) -> a 3x3 convolution + BatchNorm to ``primary_types`` capsules of ``primary_dim`` per grid position, squashed ->
predictions ``u_hat = W_t u`` with one matrix per capsule type and output capsule, shared over positions -> dynamic
routing (3 iterations, ``edgead.models.capsules``) -> 2 output capsules (0 normal, 1 anomalous) of
``capsule_dim``. A decoder (MLP, sigmoid) reconstructs the input image, average-pooled by ``recon_stride``, from
the normal capsule; it is trained on good images only (the label masks the defective ones out).

Score: ``|v_anomalous| - |v_normal| + score_recon_weight * MSE(reconstruction, pooled input)``.

Map (the graph contract needs one): the **anomalous capsule's vote map**. Before the squash the anomalous capsule
is ``s = sum_i c_i u_hat_i``, so its length splits exactly over the primary capsules:
``|s| = sum_i c_i (u_hat_i . v / |v|)``. Each grid cell gets the sum of its capsules' terms (summed over types),
upsampled bilinearly to the input size: where the evidence for "anomalous" comes from. Gradient-free, computed
from the routing coefficients of the forward pass, so it is in the exported graph at no extra cost.

Departures from Sabour (stated): a frozen pretrained stem instead of a 9x9 conv trained from scratch (few images);
prediction matrices shared over positions (translation-equivariant, ~100x fewer weights: defects can be anywhere
and there are few of them); the decoder rebuilds a pooled image from the normal capsule only.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from edgead.errors import ConfigError
from edgead.models.backbone import Backbone, build_backbone
from edgead.models.capsules import dynamic_routing, squash
from edgead.models.common import check_feature_stage, check_input_hw
from edgead.models.training import TrainedStateMixin

NORMAL, ANOMALOUS = 0, 1  # output capsule indices (= class labels)
DECODER_HIDDEN = (256, 512)  # Sabour's decoder widths (the last layer: the pooled image)
VOTE_EPS = 1e-8


class CapsNet(TrainedStateMixin, nn.Module):
    """Supervised CapsNet. ``forward(x) -> (raw_score [N], raw_map [N, H, W])`` on normalised ``[N, 3, H, W]``.

    Args:
        input_hw: model resolution ``(height, width)``; multiples of the feature stride and of ``recon_stride``.
        backbone: key of ``edgead.models.backbone.BACKBONES``.
        feature_layer: the backbone stage the primary capsules read (``"block1"`` .. ``"block6"``).
        primary_types: primary capsule types per grid position.
        primary_dim: primary capsule size (8 in the paper).
        capsule_dim: output capsule size (16 in the paper).
        routing_iterations: dynamic routing iterations (3 in the paper).
        recon_stride: the reconstruction target is the input average-pooled by this factor.
        recon_weight: weight of the reconstruction MSE (good images) in the training loss.
        score_recon_weight: weight ``w`` of the reconstruction MSE in the score.
        dropout: channel dropout on the frozen features while training (a cheap augmentation).
        steps: training steps (``train.fit``).
        lr: Adam learning rate.
        seed: seed of the initialisation and of the training batches.
        pretrained: load the backbone's pretrained weights (``False`` only for tests).

    Raises:
        ConfigError: if a parameter is out of range or the resolution does not fit the strides.

    Example:
        >>> model = CapsNet((128, 160))                               # doctest: +SKIP
        >>> fit(model, good_batches, defective=defects)               # doctest: +SKIP
        >>> score, amap = model(x)                                    # doctest: +SKIP
    """

    def __init__(self, input_hw: Sequence[int], backbone: str = "efficientnet_lite0", feature_layer: str = "block3",
                 primary_types: int = 8, primary_dim: int = 8, capsule_dim: int = 16, routing_iterations: int = 3,
                 recon_stride: int = 8, recon_weight: float = 0.5, score_recon_weight: float = 1.0,
                 dropout: float = 0.1, steps: int = 300, lr: float = 1e-3, seed: int = 0, pretrained: bool = True):
        super().__init__()
        if min(int(primary_types), int(primary_dim), int(capsule_dim), int(routing_iterations), int(recon_stride),
               int(steps)) < 1 or float(lr) <= 0 or min(float(recon_weight), float(score_recon_weight)) < 0:
            raise ConfigError("CapsNet needs primary_types, primary_dim, capsule_dim, routing_iterations, recon_stride,"
                              " steps >= 1, lr > 0 and weights >= 0")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"CapsNet dropout={dropout} must be in [0, 1)")
        torch.manual_seed(int(seed))
        self.backbone: Backbone = build_backbone(backbone, pretrained=pretrained)
        check_feature_stage(self.backbone, feature_layer, "CapsNet")
        stride = self.backbone.strides[feature_layer]
        self.input_hw = check_input_hw(input_hw, max(stride, int(recon_stride)))
        step = stride * int(recon_stride) // math.gcd(stride, int(recon_stride))
        if self.input_hw[0] % step or self.input_hw[1] % step:
            raise ConfigError(f"CapsNet input_hw {self.input_hw} must be multiples of {step} (feature stride "
                              f"{stride}, recon_stride {recon_stride})", hint="use multiples of 32")
        self.backbone.fix_input_hw(self.input_hw)
        self.feature_layer = feature_layer
        self.grid_hw = (self.input_hw[0] // stride, self.input_hw[1] // stride)
        self.recon_hw = (self.input_hw[0] // int(recon_stride), self.input_hw[1] // int(recon_stride))
        self.types, self.primary_dim = int(primary_types), int(primary_dim)
        self.primary = nn.Sequential(  # BN: unit-scale primary vectors, so the squash does not start them at ~0
            nn.Conv2d(self.backbone.channels[feature_layer], self.types * self.primary_dim, 3, padding=1),
            nn.BatchNorm2d(self.types * self.primary_dim))
        n_in = self.types * self.grid_hw[0] * self.grid_hw[1]  # the routing sums I votes: scale them by 1/sqrt(I)
        self.weight = nn.Parameter(torch.randn(self.types, 2, int(capsule_dim), self.primary_dim)
                                   / math.sqrt(self.primary_dim * n_in))  # so |s| ~ 1 at init, not a saturated squash
        layers: list[nn.Module] = []
        width = int(capsule_dim)
        for hidden in DECODER_HIDDEN:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers += [nn.Linear(width, 3 * self.recon_hw[0] * self.recon_hw[1]), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(self.backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.backbone.std).view(1, 3, 1, 1), persistent=False)
        self.iterations, self.recon_stride = int(routing_iterations), int(recon_stride)
        self.recon_weight, self.score_recon_weight = float(recon_weight), float(score_recon_weight)
        self.dropout, self.steps, self.lr, self.seed = float(dropout), int(steps), float(lr), int(seed)
        self._params = {
            "input_hw": list(self.input_hw), "backbone": backbone, "feature_layer": feature_layer,
            "primary_types": self.types, "primary_dim": self.primary_dim, "capsule_dim": int(capsule_dim),
            "routing_iterations": self.iterations, "recon_stride": self.recon_stride,
            "recon_weight": self.recon_weight, "score_recon_weight": self.score_recon_weight,
            "dropout": self.dropout, "steps": self.steps, "lr": self.lr, "seed": self.seed,
            "pretrained": bool(pretrained),
        }

    # -- parts ------------------------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen backbone features ``[N, C, gh, gw]`` of a normalised batch."""
        return self.backbone.features(x, [self.feature_layer])[self.feature_layer]

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction target: the ``[0, 1]`` image average-pooled by ``recon_stride`` ``[N, 3, rh, rw]``."""
        return F.avg_pool2d(x * self.std + self.mean, self.recon_stride)

    def route(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Primary capsules of features ``f``, routed to the two output capsules.

        Args:
            f: backbone features ``[N, C, gh, gw]``.

        Returns:
            ``(u_hat [N, I, 2, D], v [N, 2, D], c [N, I, 2])`` with ``I = gh * gw * primary_types`` ordered
            position-major (row, column, type).
        """
        f = F.dropout2d(f, self.dropout, training=self.training)  # no node in the exported (eval) graph
        p = self.primary(f).reshape(-1, self.types, self.primary_dim, self.grid_hw[0] * self.grid_hw[1])
        u = squash(p.permute(0, 3, 1, 2), dim=-1)  # [N, P, T, d]
        u_hat = torch.matmul(self.weight[None, None], u[..., None, :, None])[..., 0]  # [N, P, T, 2, D]
        u_hat = u_hat.reshape(u_hat.shape[0], -1, 2, u_hat.shape[-1])
        v, c = dynamic_routing(u_hat, self.iterations)
        return u_hat, v, c

    def reconstruct(self, v_normal: torch.Tensor) -> torch.Tensor:
        """The pooled image ``[N, 3, rh, rw]`` decoded from the normal capsule ``[N, D]``."""
        return self.decoder(v_normal).reshape(-1, 3, *self.recon_hw)

    def vote_map(self, u_hat: torch.Tensor, v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``c_i (u_hat_i . v/|v|)`` of the anomalous capsule, summed per grid cell, at input size ``[N, H, W]``."""
        v_a = v[:, ANOMALOUS]
        unit = v_a / (v_a.norm(dim=-1, keepdim=True) + VOTE_EPS)
        votes = c[:, :, ANOMALOUS] * (u_hat[:, :, ANOMALOUS] * unit[:, None, :]).sum(dim=-1)  # [N, I]
        cells = votes.reshape(-1, 1, self.grid_hw[0] * self.grid_hw[1], self.types).sum(dim=-1)
        cells = cells.reshape(-1, 1, *self.grid_hw)
        return F.interpolate(cells, size=self.input_hw, mode="bilinear", align_corners=False)[:, 0]

    # -- inference --------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a normalised batch.

        Args:
            x: ``[N, 3, H, W]`` float32 at ``input_hw``, normalised with the backbone's mean/std.

        Returns:
            ``(raw_score [N], raw_map [N, H, W])``: ``|v_anom| - |v_norm| + w * MSE`` and the anomalous vote map.
        """
        u_hat, v, c = self.route(self.features(x))
        lengths = v.norm(dim=-1)
        error = (self.reconstruct(v[:, NORMAL]) - self.target(x)).pow(2).mean(dim=(1, 2, 3))
        score = lengths[:, ANOMALOUS] - lengths[:, NORMAL] + self.score_recon_weight * error
        return score, self.vote_map(u_hat, v, c)
