"""Images -> normalised float batches, through the same preprocessing module the exported graph contains."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from edgead.models.export import Preprocess


def to_batch(images: Sequence[np.ndarray], preprocess: Preprocess) -> torch.Tensor:
    """Preprocess uint8 HxWxC images of any size one by one (as the station feeds them) and stack them."""
    with torch.no_grad():
        return torch.cat([preprocess(torch.from_numpy(np.ascontiguousarray(im))[None]) for im in images])


def preprocess_all(images: Sequence[np.ndarray], preprocess: Preprocess) -> torch.Tensor | None:
    """Every image preprocessed once, stacked ``[N, 3, h, w]``; None for no images."""
    return to_batch(images, preprocess) if len(images) else None


def batches(images: Sequence[np.ndarray], preprocess: Preprocess, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield normalised float batches ``[B, 3, h, w]`` (one pass)."""
    for start in range(0, len(images), batch_size):
        yield to_batch(images[start:start + batch_size], preprocess)


class Batches:
    """Re-iterable normalised batches for models that train for several epochs.

    Each image is preprocessed once (the same module as in the exported graph) and kept; every ``iter()`` yields
    the batches again, in a fresh seeded order when ``shuffle``. ``len()`` is the number of batches per epoch.
    """

    def __init__(self, images: Sequence[np.ndarray], preprocess: Preprocess, batch_size: int, *,
                 shuffle: bool = False, seed: int = 0):
        self._tensors = preprocess_all(images, preprocess)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        n = 0 if self._tensors is None else len(self._tensors)
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self._tensors is None:
            return
        n = len(self._tensors)
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            yield self._tensors[torch.from_numpy(order[start:start + self.batch_size])]


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
