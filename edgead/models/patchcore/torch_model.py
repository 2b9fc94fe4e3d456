"""PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022) as a plain module.

Patch features of mid-level backbone stages, each averaged over its ``patch_size`` neighbourhood (the paper's
locally aware patch features, 3x3), resampled to the patch grid (finer stages area-pooled, coarser ones bilinearly upsampled),
optionally scaled so that every stage weighs the same in the distance, and concatenated; a memory bank from a greedy
k-center coreset (``coreset.py``, filled by ``train.fit``); the patch score is the distance to the nearest bank
entry, and the image score is the paper's reweighted maximum.

Why the scaling and the stages (docs/benchmarks.md, "Sharper PatchCore maps"): unscaled, the deepest stage's larger
features dominate the distance, so the map follows its coarse, wide receptive field; the stride-4 grid of block1
(block0 area-pooled and block2 upsampled onto it) resolves small defects that a stride-8 grid blurs. A 2.5 % coreset of the four times
as many patches keeps the bank, and the nearest-neighbour cost, about where the stride-8 default with 10 % was.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgead.errors import ConfigError, DataError
from edgead.models.backbone import Backbone, build_backbone
from edgead.models.common import (
    PAPER_SIGMA_PX,
    GaussianSmoothing,
    check_backbone_sha,
    channel_pool_matrix,
    check_input_hw,
    load_own_state,
    own_state,
    squared_distances,
)


class LayerScaling(str, Enum):
    """How the stages' features are weighed before concatenation."""

    NONE = "none"  # as the backbone gives them (the deepest stage dominates the distance)
    MEAN_NORM = "mean-norm"  # each stage divided by the mean L2 norm of its patch features on the training images


LEGACY_PARAMS = {"grid_layer": None, "layer_scaling": LayerScaling.NONE.value}
"""What a bundle without ``grid_layer`` / ``layer_scaling`` in its parameters was trained with."""


class PatchCore(nn.Module):
    """PatchCore. ``forward(x) -> (raw_score [N], raw_map [N, H, W])`` on normalised ``[N, 3, H, W]`` input.

    Args:
        input_hw: model resolution ``(height, width)``, fixed (may be non-square).
        backbone: key of ``edgead.models.backbone.BACKBONES``.
        layers: backbone layers whose locally aware features are concatenated.
        grid_layer: the layer whose grid is the patch grid (``None``: the first of ``layers``); finer layers are
            area-pooled onto it, coarser ones bilinearly upsampled.
        layer_scaling: ``none`` or ``mean-norm`` (:class:`LayerScaling`; the scales are fitted by ``train.fit``).
        feature_dim: channels after adaptive averaging over the concatenated channels (``None``: keep all).
        coreset_ratio: fraction of training patches kept in the bank (used by ``train.fit``).
        num_neighbors: bank neighbours in the reweighting (``N_b`` in the paper; includes ``m*`` itself).
        projection_dim: random-projection size for the coreset selection (used by ``train.fit``).
        sigma_px: Gaussian smoothing of the map, in pixels at model resolution.
        patch_size: side of the local neighbourhood each stage's features are averaged over (the paper's ``p``,
            odd; 1: none).
        seed: seed of the coreset selection.
        pretrained: load the backbone's pretrained weights (``False`` only for shape tests).
        bank_size: rows of the (empty) memory bank buffer; ``from_state`` sets it.

    Raises:
        ConfigError: if a parameter is out of range.

    Example:
        >>> model = PatchCore((160, 320))                   # doctest: +SKIP
        >>> fit(model, batches); score, amap = model(x)     # doctest: +SKIP
    """

    def __init__(
        self,
        input_hw: Sequence[int],
        backbone: str = "efficientnet_lite0",
        layers: Sequence[str] = ("block0", "block1", "block2"),
        feature_dim: int | None = None,
        coreset_ratio: float = 0.025,
        num_neighbors: int = 9,
        projection_dim: int = 128,
        sigma_px: float = PAPER_SIGMA_PX,
        seed: int = 0,
        pretrained: bool = True,
        bank_size: int = 0,
        grid_layer: str | None = "block1",
        layer_scaling: LayerScaling | str = LayerScaling.MEAN_NORM,
        patch_size: int = 3,
    ):
        super().__init__()
        self.backbone: Backbone = build_backbone(backbone, pretrained=pretrained)
        if len(layers) < 1:
            raise ConfigError("PatchCore needs at least one backbone layer", hint="e.g. layers=['block2', 'block4']")
        self.layers = [str(name) for name in layers]
        unknown = [name for name in self.layers if name not in self.backbone.channels]
        if unknown:
            raise ConfigError(f"backbone {backbone!r} has no layer {unknown[0]!r}", hint=f"use {list(self.backbone.channels)}")
        self.grid_layer = str(grid_layer) if grid_layer is not None else self.layers[0]
        if self.grid_layer not in self.backbone.channels:
            raise ConfigError(f"PatchCore grid_layer {self.grid_layer!r} is not a backbone layer",
                              hint=f"use one of {list(self.backbone.channels)}")
        try:
            self.layer_scaling = LayerScaling(layer_scaling)
        except ValueError:
            raise ConfigError(f"PatchCore layer_scaling {layer_scaling!r} is unknown",
                              hint=f"use one of {[s.value for s in LayerScaling]}") from None
        strides = [self.backbone.strides[name] for name in self.layers]
        grid_stride = self.backbone.strides[self.grid_layer]
        self.input_hw = check_input_hw(input_hw, max(strides + [grid_stride]))
        self.backbone.fix_input_hw(self.input_hw)
        in_dim = sum(self.backbone.channels[name] for name in self.layers)
        if feature_dim is not None and not 1 <= int(feature_dim) <= in_dim:
            raise ConfigError(f"PatchCore feature_dim={feature_dim} must be in 1..{in_dim} for layers {self.layers}")
        if not 0.0 < float(coreset_ratio) <= 1.0:
            raise ConfigError(f"PatchCore coreset_ratio={coreset_ratio} must be in (0, 1]")
        if int(patch_size) < 1 or int(patch_size) % 2 == 0:
            raise ConfigError(f"PatchCore patch_size={patch_size} must be odd and >= 1", hint="the paper uses 3")
        self.patch_size = int(patch_size)
        if int(num_neighbors) < 1:
            raise ConfigError(f"PatchCore num_neighbors={num_neighbors} must be >= 1")
        self.feature_dim = int(feature_dim) if feature_dim is not None else None
        self.coreset_ratio = float(coreset_ratio)
        self.num_neighbors = int(num_neighbors)
        self.projection_dim = int(projection_dim)
        self.seed = int(seed)
        self.grid_hw = tuple(-(-side // grid_stride) for side in self.input_hw)
        # per layer: an integer area-pooling factor onto the grid (finer layers), 1 (same), or 0 (upsample)
        self._pool = [grid_stride // s if s <= grid_stride else 0 for s in strides]
        self.embed_dim = self.feature_dim or in_dim
        if self.feature_dim is not None:
            pool = channel_pool_matrix(in_dim, self.feature_dim).t().reshape(self.feature_dim, in_dim, 1, 1)
            self.register_buffer("channel_pool", pool.contiguous(), persistent=False)  # a fixed 1x1 conv
        else:
            self.channel_pool = None
        self.smoothing = GaussianSmoothing(sigma_px, self.input_hw)
        if self.layer_scaling is not LayerScaling.NONE:
            self.register_buffer("layer_scale", torch.ones(len(self.layers)))
        else:
            self.layer_scale = None
        self._channels = [self.backbone.channels[name] for name in self.layers]
        self.register_buffer("memory_bank", torch.zeros(int(bank_size), self.embed_dim))
        self.register_buffer("bank_neighbors", torch.zeros(int(bank_size), self.num_neighbors, dtype=torch.long))
        self._params = {
            "input_hw": list(self.input_hw),
            "backbone": backbone,
            "layers": list(self.layers),
            "feature_dim": self.feature_dim,
            "coreset_ratio": self.coreset_ratio,
            "num_neighbors": self.num_neighbors,
            "projection_dim": self.projection_dim,
            "sigma_px": float(sigma_px),
            "seed": self.seed,
            "pretrained": bool(pretrained),
            "grid_layer": self.grid_layer,
            "layer_scaling": self.layer_scaling.value,
            "patch_size": self.patch_size,
        }

    # -- features -------------------------------------------------------------------------------------------
    def layer_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's locally aware features on the patch grid, unscaled: ``[N, C_l, gh, gw]`` per layer."""
        feats = self.backbone.features(x, self.layers)
        maps = []
        for name, pool in zip(self.layers, self._pool):
            fmap = feats[name]
            if self.patch_size > 1:
                fmap = F.avg_pool2d(fmap, kernel_size=self.patch_size, stride=1, padding=self.patch_size // 2)
            if pool > 1:  # a finer layer: the mean over the grid cell (ceil: TF "same" grids round up)
                fmap = F.avg_pool2d(fmap, kernel_size=pool, stride=pool, ceil_mode=True)
            elif pool == 0:
                fmap = F.interpolate(fmap, size=self.grid_hw, mode="bilinear", align_corners=False)
            maps.append(fmap)
        return maps

    def set_layer_scale(self, patch_rows: torch.Tensor) -> None:
        """Fit the ``mean-norm`` scales from unscaled patch rows ``[P, sum C_l]`` (no-op for ``none``).

        Raises:
            DataError: if a layer's features are all zero.
        """
        if self.layer_scale is None:
            return
        norms = [chunk.norm(dim=1).mean() for chunk in patch_rows.split(self._channels, dim=1)]
        scale = torch.stack(norms).float()
        if not bool(torch.all(scale > 0)):
            raise DataError(f"PatchCore layer features are all zero on the training images ({scale.tolist()})",
                            hint="check the training images (blank frames?)")
        self.layer_scale = (1.0 / scale).to(self.layer_scale.device)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Locally aware patch features on the patch grid: ``[N, embed_dim, gh, gw]``."""
        maps = self.layer_maps(x)
        if self.layer_scale is not None:
            maps = [fmap * self.layer_scale[i] for i, fmap in enumerate(maps)]
        emb = torch.cat(maps, dim=1)
        if self.channel_pool is not None:
            emb = F.conv2d(emb, self.channel_pool)
        return emb

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """Patch features as rows: ``[N * gh * gw, embed_dim]``."""
        return self.embed(x).permute(0, 2, 3, 1).reshape(-1, self.embed_dim)

    def raw_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Unscaled, unpooled patch rows ``[N * gh * gw, sum C_l]`` (what :meth:`set_layer_scale` reads)."""
        emb = torch.cat(self.layer_maps(x), dim=1)
        return emb.permute(0, 2, 3, 1).reshape(-1, emb.shape[1])

    def rows_to_features(self, rows: torch.Tensor) -> torch.Tensor:
        """:meth:`raw_rows` -> :meth:`patches` rows: the layer scales, then the channel pooling."""
        if self.layer_scale is not None:
            rows = rows * torch.repeat_interleave(self.layer_scale, torch.tensor(self._channels,
                                                                               device=rows.device))
        if self.channel_pool is not None:
            rows = rows @ self.channel_pool.reshape(self.embed_dim, -1).t()
        return rows

    # -- memory bank ----------------------------------------------------------------------------------------
    def set_memory_bank(self, bank: torch.Tensor, neighbors: torch.Tensor) -> None:
        """Install a memory bank and the indices of each entry's nearest bank entries (itself first).

        Args:
            bank: ``[M, embed_dim]`` float32.
            neighbors: ``[M, num_neighbors]`` int64.

        Raises:
            ConfigError: if the shapes do not fit.
        """
        if bank.dim() != 2 or bank.shape[1] != self.embed_dim or bank.shape[0] < 1:
            raise ConfigError(f"memory bank must be [M>=1, {self.embed_dim}], got {tuple(bank.shape)}")
        if tuple(neighbors.shape) != (bank.shape[0], self.num_neighbors):
            raise ConfigError(
                f"bank neighbours must be [{bank.shape[0]}, {self.num_neighbors}], got {tuple(neighbors.shape)}",
                hint="lower num_neighbors below the bank size",
            )
        self.memory_bank = bank.detach().float().contiguous()
        self.bank_neighbors = neighbors.detach().long().contiguous()

    @property
    def is_fitted(self) -> bool:
        """True once a memory bank is installed."""
        return self.memory_bank.shape[0] > 0

    # -- inference ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a normalised batch.

        Args:
            x: ``[N, 3, H, W]`` float32 at ``input_hw``, normalised with the backbone's mean/std.

        Returns:
            ``(raw_score [N], raw_map [N, H, W])``.
        """
        if not self.is_fitted:  # a static shape check, not data-dependent control flow
            raise ConfigError("PatchCore has an empty memory bank", hint="fit the model before scoring")
        emb = self.embed(x)
        gh, gw = self.grid_hw
        feats = emb.permute(0, 2, 3, 1).reshape(x.shape[0], gh * gw, self.embed_dim)  # [N, P, D]
        dist2 = squared_distances(feats, self.memory_bank)  # [N, P, M]
        nn_dist2, nn_index = dist2.min(dim=-1)  # [N, P]
        patch_scores = nn_dist2.sqrt()
        score = self._reweighted_score(feats, patch_scores, nn_index)
        amap = self.upsample_map(patch_scores.reshape(-1, 1, gh, gw))
        return score, self.smoothing(amap).squeeze(1)

    def upsample_map(self, amap: torch.Tensor) -> torch.Tensor:
        """The patch-grid map ``[N, 1, gh, gw]`` at model resolution (bilinear)."""
        return F.interpolate(amap, size=self.input_hw, mode="bilinear", align_corners=False)

    def _reweighted_score(self, feats: torch.Tensor, patch_scores: torch.Tensor, nn_index: torch.Tensor) -> torch.Tensor:
        """``s = (1 - softmax_b(d(m_test, m_b))[m*]) * d(m_test, m*)`` for the most anomalous patch of each image."""
        worst = patch_scores.argmax(dim=1, keepdim=True)  # [N, 1]
        d_star = patch_scores.gather(1, worst).squeeze(1)  # [N]
        m_test = feats.gather(1, worst.unsqueeze(-1).expand(-1, -1, self.embed_dim))  # [N, 1, D]
        star_index = nn_index.gather(1, worst).squeeze(1)  # [N]
        support_index = self.bank_neighbors.index_select(0, star_index)  # [N, k], column 0 is m* itself
        support = self.memory_bank.index_select(0, support_index.reshape(-1)).reshape(-1, self.num_neighbors, self.embed_dim)
        support_dist = squared_distances(m_test, support).sqrt().squeeze(1)  # [N, k]
        weight = 1.0 - torch.softmax(support_dist, dim=1)[:, 0]
        return weight * d_star

    # -- serialisation --------------------------------------------------------------------------------------
    def export_params(self) -> dict[str, Any]:
        """Constructor parameters as YAML-safe plain types (plus the backbone weights' sha256 and bank size)."""
        params = dict(self._params)
        params["bank_size"] = int(self.memory_bank.shape[0])
        params["backbone_sha256"] = self.backbone.weights_sha256
        return params

    def export_state(self) -> dict[str, np.ndarray]:
        """The fitted tensors (memory bank, neighbour indices) as numpy arrays; the backbone is not included."""
        return own_state(self)

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, np.ndarray]) -> "PatchCore":
        """Rebuild a fitted model from :meth:`export_params` and :meth:`export_state`.

        Args:
            params: the exported parameters.
            state: the exported arrays.

        Returns:
            The model, in eval mode.

        Raises:
            BundleError: if the backbone weights differ from those used at training, or the state does not fit.
            ConfigError: if a parameter is invalid.
        """
        kwargs = {**LEGACY_PARAMS, **params}  # bundles written before these parameters existed
        expected_sha = kwargs.pop("backbone_sha256", None)
        model = cls(**kwargs)
        check_backbone_sha(model.backbone.name, model.backbone.weights_sha256, expected_sha)
        load_own_state(model, state)
        return model.eval()

