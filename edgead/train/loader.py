"""Images -> normalised float batches, through the same preprocessing module the exported graph contains."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from edgead.convert.export import Preprocess


def to_batch(images: Sequence[np.ndarray], preprocess: Preprocess) -> torch.Tensor:
    """Preprocess uint8 HxWxC images of any size one by one (as the station feeds them) and stack them."""
    with torch.no_grad():
        return torch.cat([preprocess(torch.from_numpy(np.ascontiguousarray(im))[None]) for im in images])


def batches(images: Sequence[np.ndarray], preprocess: Preprocess, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield normalised float batches ``[B, 3, h, w]``."""
    for start in range(0, len(images), batch_size):
        yield to_batch(images[start:start + batch_size], preprocess)


def predict_torch(model: torch.nn.Module, images: Sequence[np.ndarray], preprocess: Preprocess,
                  batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores ``[N]`` and raw maps ``[N, h, w]`` of the torch model."""
    scores, maps = [], []
    with torch.no_grad():
        for batch in batches(images, preprocess, batch_size):
            s, m = model(batch)
            scores.append(s.numpy())
            maps.append(m.numpy())
    return np.concatenate(scores), np.concatenate(maps)
