"""DRAEM (Zavrtanik et al., "DRAEM - A discriminatively trained reconstruction embedding for surface anomaly
detection", ICCV 2021) as a plain module.

Inference path (the only part in the exported graph): reconstruct the image, feed input and reconstruction to
the discriminative U-Net, softmax, anomaly channel = the map; the image score is the maximum of the map after a
mean filter (21x21 at 256 px in the paper, scaled to the model resolution). No pretrained backbone: the input is
normalised with mean = std = 0.5 (as the EfficientNet-Lite0 backbone of the other models).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from edgead.errors import ConfigError
from edgead.models.common import check_input_hw, filter_size, smoothed_max
from edgead.models.generic import GenericSource
from edgead.models.training import InputNorm, TrainedStateMixin
from edgead.models.draem.networks import Discriminative, Reconstructive

class Draem(TrainedStateMixin, nn.Module):
    """DRAEM. ``forward(x) -> (raw_score [N], raw_map [N, H, W])`` on normalised ``[N, 3, H, W]`` input.

    Args:
        input_hw: model resolution ``(height, width)``, each divisible by ``2 ** (depth - 1)``.
        rec_width: first-level channels of the reconstructive network (paper: 128).
        disc_width: first-level channels of the discriminative network (paper: 64).
        depth: levels of both networks (paper: 5 and 6).
        steps: training steps (used by ``train.fit``; the paper trains 700 epochs).
        lr: Adam learning rate (used by ``train.fit``; paper: 1e-4).
        anomaly_probability: share of training samples given a simulated anomaly (paper: 0.5).
        anomaly_source: where the anomaly textures come from: ``"procedural"`` (``edgead.models.perlin``) or
            ``"generic"`` (``edgead.models.generic``: also the photographs shipped in the train extra's wheels; the
            paper: DTD).
        seed: seed of the anomaly simulator and of the weight initialisation.
        pretrained: accepted for the registry's interface; DRAEM has no pretrained part.

    Raises:
        ConfigError: if a parameter is out of range or the resolution does not fit the depth.

    Example:
        >>> model = Draem((128, 160))                       # doctest: +SKIP
        >>> fit(model, batches); score, amap = model(x)     # doctest: +SKIP
    """

    def __init__(
        self,
        input_hw: Sequence[int],
        rec_width: int = 8,
        disc_width: int = 8,
        depth: int = 4,
        steps: int = 200,
        lr: float = 1e-3,
        anomaly_probability: float = 0.5,
        anomaly_source: str = "procedural",
        seed: int = 0,
        pretrained: bool = True,
    ):
        super().__init__()
        if int(depth) < 2 or min(int(rec_width), int(disc_width)) < 1 or int(steps) < 1 or float(lr) <= 0:
            raise ConfigError(f"DRAEM needs depth >= 2, widths >= 1, steps >= 1, lr > 0; got depth={depth}, "
                              f"rec_width={rec_width}, disc_width={disc_width}, steps={steps}, lr={lr}")
        if not 0.0 < float(anomaly_probability) <= 1.0:
            raise ConfigError(f"DRAEM anomaly_probability={anomaly_probability} must be in (0, 1]")
        factor = 2 ** (int(depth) - 1)
        self.input_hw = check_input_hw(input_hw, factor)
        if self.input_hw[0] % factor or self.input_hw[1] % factor:
            raise ConfigError(f"DRAEM input_hw {tuple(self.input_hw)} must be divisible by {factor} at depth {depth}",
                              hint="use multiples of 32 (the pipeline's sizes are)")
        self.backbone = InputNorm()
        torch.manual_seed(int(seed))
        self.reconstructive = Reconstructive(int(rec_width), int(depth))
        self.discriminative = Discriminative(int(disc_width), int(depth))
        self.filter_px = filter_size(self.input_hw)
        self.steps, self.lr = int(steps), float(lr)
        self.anomaly_probability = float(anomaly_probability)
        try:
            self.anomaly_source = GenericSource(getattr(anomaly_source, "value", anomaly_source))
        except ValueError as exc:
            raise ConfigError(f"DRAEM anomaly_source={anomaly_source!r} is unknown",
                              hint=f"use one of {[s.value for s in GenericSource]}") from exc
        self.seed = int(seed)
        self._params = {
            "input_hw": list(self.input_hw), "rec_width": int(rec_width), "disc_width": int(disc_width),
            "depth": int(depth), "steps": self.steps, "lr": self.lr,
            "anomaly_probability": self.anomaly_probability, "anomaly_source": self.anomaly_source.value,
            "seed": self.seed, "pretrained": bool(pretrained),
        }

    def segment(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction ``[N, 3, H, W]`` and discriminator logits ``[N, 2, H, W]`` (training and inference)."""
        recon = self.reconstructive(x)
        return recon, self.discriminative(torch.cat([x, recon], dim=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a normalised batch.

        Args:
            x: ``[N, 3, H, W]`` float32 at ``input_hw``, normalised with mean = std = 0.5.

        Returns:
            ``(raw_score [N], raw_map [N, H, W])``: the max of the mean-filtered map, the anomaly probability.
        """
        _, logits = self.segment(x)
        amap = torch.softmax(logits, dim=1)[:, 1]
        return smoothed_max(amap, self.filter_px), amap

    # -- serialisation --------------------------------------------------------------------------------------

