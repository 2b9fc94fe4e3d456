"""PaDiM (Defard et al., "PaDiM: a Patch Distribution Modeling Framework", ICPR 2021) as a plain module.

Features of three backbone stages, upsampled to the finest grid and concatenated; a seeded random subset of the
channels; one Gaussian (mean, inverse covariance) per grid position; the map is the Mahalanobis distance, upsampled
and smoothed; the image score is the map's maximum.

Continual learning (``edgead.continual``, strategy ``per-task``): the model may hold ``n_tasks`` stacks of Gaussians
``[T, positions, d, d]``. The graph computes the distance map under every task's Gaussians and keeps, per image, the
task with the lowest sum of the (unsmoothed) grid map: ``argmin`` + ``gather``, no loop over images, so it exports to
ONNX. With ``T = 1`` the selection is the identity and the output is that of the plain model.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgead.errors import ConfigError
from edgead.models.backbone import Backbone, build_backbone
from edgead.models.common import (
    PAPER_SIGMA_PX,
    GaussianSmoothing,
    check_backbone_sha,
    check_input_hw,
    load_own_state,
    own_state,
)


class Padim(nn.Module):
    """PaDiM. ``forward(x) -> (raw_score [N], raw_map [N, H, W])`` on normalised ``[N, 3, H, W]`` input.

    Args:
        input_hw: model resolution ``(height, width)``, fixed (may be non-square).
        backbone: key of ``edgead.models.backbone.BACKBONES``.
        layers: backbone layers; the first one's grid is the position grid.
        n_features: size of the random channel subset (``None`` or ``>=`` total: all channels, in order).
        eps: regularisation ``eps * I`` added to each covariance.
        sigma_px: Gaussian smoothing of the map, in pixels at model resolution.
        seed: seed of the channel subset.
        pretrained: load the backbone's pretrained weights (``False`` only for shape tests).
        n_tasks: Gaussians per position, one per task (``per-task`` continual strategy; 1 for a plain model).

    Raises:
        ConfigError: if a parameter is out of range.
    """

    def __init__(
        self,
        input_hw: Sequence[int],
        backbone: str = "efficientnet_lite0",
        layers: Sequence[str] = ("block2", "block3", "block4"),
        n_features: int | None = 100,
        eps: float = 0.01,
        sigma_px: float = PAPER_SIGMA_PX,
        seed: int = 0,
        pretrained: bool = True,
        n_tasks: int = 1,
    ):
        super().__init__()
        self.backbone: Backbone = build_backbone(backbone, pretrained=pretrained)
        self.layers = [str(name) for name in layers]
        unknown = [name for name in self.layers if name not in self.backbone.channels]
        if not self.layers or unknown:
            raise ConfigError(f"PaDiM layers {self.layers} invalid", hint=f"use names from {list(self.backbone.channels)}")
        strides = [self.backbone.strides[name] for name in self.layers]
        self.input_hw = check_input_hw(input_hw, max(strides))
        self.backbone.fix_input_hw(self.input_hw)
        total = sum(self.backbone.channels[name] for name in self.layers)
        if n_features is not None and int(n_features) < 1:
            raise ConfigError(f"PaDiM n_features={n_features} must be >= 1")
        if int(n_tasks) < 1:
            raise ConfigError(f"PaDiM n_tasks={n_tasks} must be >= 1")
        if float(eps) <= 0:
            raise ConfigError(f"PaDiM eps={eps} must be > 0")
        self.n_features = min(int(n_features), total) if n_features is not None else total
        self.eps = float(eps)
        self.seed = int(seed)
        self.grid_hw = tuple(-(-side // strides[0]) for side in self.input_hw)
        self._resize = [stride != strides[0] for stride in strides]
        positions = self.grid_hw[0] * self.grid_hw[1]
        if self.n_features < total:
            generator = torch.Generator().manual_seed(self.seed)
            index = torch.randperm(total, generator=generator)[: self.n_features].sort().values
        else:
            index = torch.arange(total)
        self.register_buffer("channel_index", index)
        self.n_tasks = int(n_tasks)
        self.register_buffer("mean", torch.zeros(self.n_tasks, positions, self.n_features))
        self.register_buffer("inv_covariance", torch.zeros(self.n_tasks, positions, self.n_features, self.n_features))
        self.smoothing = GaussianSmoothing(sigma_px, self.input_hw)
        self.fitted = False
        self._params = {
            "input_hw": list(self.input_hw),
            "backbone": backbone,
            "layers": list(self.layers),
            "n_features": self.n_features,
            "eps": self.eps,
            "sigma_px": float(sigma_px),
            "seed": self.seed,
            "pretrained": bool(pretrained),
            "n_tasks": self.n_tasks,
        }

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Position features: ``[N, positions, n_features]`` (row-major over the grid)."""
        feats = self.backbone.features(x, self.layers)
        maps = []
        for name, resize in zip(self.layers, self._resize):
            fmap = feats[name]
            if resize:
                fmap = F.interpolate(fmap, size=self.grid_hw, mode="nearest")
            maps.append(fmap)
        emb = torch.cat(maps, dim=1).index_select(1, self.channel_index)
        return emb.flatten(2).transpose(1, 2)

    def set_gaussians(self, mean: torch.Tensor, inv_covariance: torch.Tensor) -> None:
        """Install the per-position mean ``[P, d]`` and inverse covariance ``[P, d, d]`` (``[T, P, d]`` and
        ``[T, P, d, d]`` for a model of ``n_tasks = T``; the 2-D/3-D forms are accepted when ``T = 1``).

        Raises:
            ConfigError: if the shapes do not fit.
        """
        mean, inv_covariance = mean.to(self.mean.device), inv_covariance.to(self.mean.device)
        if mean.dim() == 2 and inv_covariance.dim() == 3:
            mean, inv_covariance = mean.unsqueeze(0), inv_covariance.unsqueeze(0)
        if tuple(mean.shape) != tuple(self.mean.shape) or tuple(inv_covariance.shape) != tuple(self.inv_covariance.shape):
            raise ConfigError(
                f"PaDiM gaussians {tuple(mean.shape)}/{tuple(inv_covariance.shape)} do not fit "
                f"{tuple(self.mean.shape)}/{tuple(self.inv_covariance.shape)}"
            )
        self.mean = mean.detach().float().contiguous()
        self.inv_covariance = inv_covariance.detach().float().contiguous()
        self.fitted = True

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a normalised batch.

        Args:
            x: ``[N, 3, H, W]`` float32 at ``input_hw``, normalised with the backbone's mean/std.

        Returns:
            ``(raw_score [N], raw_map [N, H, W])``; the score is the map's maximum.
        """
        if not self.fitted:
            raise ConfigError("PaDiM has no fitted Gaussians", hint="fit the model before scoring")
        positions = self.mean.shape[1]  # no reshape involves d: convert/gaussian.py may shrink it in the graph
        delta = (self.embed(x).unsqueeze(0) - self.mean.unsqueeze(1)).transpose(1, 2)  # [T, P, N, d]
        dist2 = (torch.matmul(delta, self.inv_covariance) * delta).sum(-1).clamp_min(0.0)  # [T, P, N]
        grid = dist2.sqrt().permute(2, 0, 1)  # [N, T, P]
        best = grid.sum(dim=2).argmin(dim=1)  # [N]: the task whose Gaussians fit the image best
        grid = grid.gather(1, best.view(-1, 1, 1).expand(-1, 1, positions))[:, 0]  # [N, P]
        amap = grid.reshape(-1, 1, self.grid_hw[0], self.grid_hw[1])
        amap = F.interpolate(amap, size=self.input_hw, mode="bilinear", align_corners=False)
        amap = self.smoothing(amap).squeeze(1)
        return amap.flatten(1).amax(dim=1), amap

    def export_params(self) -> dict[str, Any]:
        """Constructor parameters as YAML-safe plain types (plus the backbone weights' sha256)."""
        return {**self._params, "backbone_sha256": self.backbone.weights_sha256}

    def export_state(self) -> dict[str, np.ndarray]:
        """The fitted tensors (channel subset, means, inverse covariances); the backbone is not included."""
        return own_state(self)

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, np.ndarray]) -> "Padim":
        """Rebuild a fitted model from :meth:`export_params` and :meth:`export_state`.

        Raises:
            BundleError: if the backbone weights differ from those used at training, or the state does not fit.
            ConfigError: if a parameter is invalid.
        """
        kwargs = dict(params)
        expected_sha = kwargs.pop("backbone_sha256", None)
        model = cls(**kwargs)
        check_backbone_sha(model.backbone.name, model.backbone.weights_sha256, expected_sha)
        state = dict(state)
        if np.ndim(state.get("mean")) == 2:  # bundles written before the task axis: one task
            state["mean"] = np.asarray(state["mean"])[None]
            state["inv_covariance"] = np.asarray(state["inv_covariance"])[None]
        load_own_state(model, state)
        model.fitted = True
        return model.eval()
