"""Fit AE-kNN: train the patch autoencoder, then embed the training anomaly maps as the kNN bank."""
from __future__ import annotations

from typing import Iterable

import torch

from edgead.errors import DataError
from edgead.models.ae_knn.torch_model import AeKnn
from edgead.models.training import run_epochs


def fit(model: AeKnn, batches: Iterable[torch.Tensor], progress: bool = True, epochs: int | None = None,
        **_unused) -> list[float]:
    """Train the autoencoder on good images, then fill the embedding bank from their anomaly maps.

    Args:
        model: the model to fit.
        batches: re-iterable normalised batches ``[B, 3, H, W]`` at ``model.input_hw`` (one pass per epoch).
        progress: show a progress bar.
        epochs: override ``model.epochs``.
        **_unused: options of other models' fit functions, ignored.

    Returns:
        The mean autoencoder loss per epoch.

    Raises:
        DataError: if no batch was given or a batch has the wrong shape.
    """
    history = run_epochs(model, batches, model.loss, epochs=int(epochs or model.epochs), lr=model.lr,
                         seed=model.seed, progress=progress, desc="ae-knn")
    with torch.no_grad():
        maps = torch.cat([model.anomaly_map(batch.float()) for batch in batches])
        if len(maps) == 0:
            raise DataError("AE-kNN fit got no training images", hint="give at least one batch of good images")
        map_scale = float(maps.flatten(1).amax(dim=1).mean().clamp_min(1e-6))
        model.map_scale = torch.tensor(map_scale, device=maps.device)
        embeddings = torch.cat([model.embed(chunk) for chunk in maps.split(16)])
        model.set_bank(embeddings, map_scale)
    return history
