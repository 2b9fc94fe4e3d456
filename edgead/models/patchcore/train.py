"""Fit a PatchCore model: collect patch features of good images, select the coreset, index the bank."""
from __future__ import annotations

import math
from typing import Iterable

import torch

from edgead.errors import DataError
from edgead.models.common import check_batch
from edgead.models.patchcore.coreset import greedy_coreset, nearest_neighbors
from edgead.models.patchcore.torch_model import PatchCore


def fit(model: PatchCore, batches: Iterable[torch.Tensor], progress: bool = True, **_unused) -> None:
    """Fit the layer scales (``layer_scaling``) and fill the memory bank from good images.

    Args:
        model: the model to fit (its backbone is frozen; only the bank changes).
        batches: normalised float tensors ``[B, 3, H, W]`` at ``model.input_hw``.
        progress: show progress bars.
        **_unused: options of other models' fit functions (e.g. ``epochs``), ignored.

    Raises:
        DataError: if no batch was given or a batch has the wrong shape.
    """
    rows = []
    model.eval()
    with torch.no_grad():
        for batch in batches:
            check_batch(batch, model.input_hw)
            rows.append(model.raw_rows(batch.float()))
        if not rows:
            raise DataError("PatchCore fit got no training images", hint="give at least one batch of good images")
        raw = torch.cat(rows)
        model.set_layer_scale(raw)  # the layers' weights in the distance (layer_scaling), from these images
        features = model.rows_to_features(raw)
        del raw
    count = max(model.num_neighbors, math.ceil(model.coreset_ratio * features.shape[0]))
    count = min(count, features.shape[0])
    index = greedy_coreset(features, count, projection_dim=model.projection_dim, seed=model.seed, progress=progress)
    bank = features[index]
    model.set_memory_bank(bank, nearest_neighbors(bank, min(model.num_neighbors, bank.shape[0])))

