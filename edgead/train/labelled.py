"""The labelled data flow of ``train()``: supervised models (``Supervision.LABELLED``) also get the defective images
of ``train/<defect_type>/``; unsupervised models never see them.

The threshold is still calibrated on held-out *good* images (target false-reject rate): the defects are few and
all of them go to the fit.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from edgead.models.export import Preprocess
from edgead.data import Category, Color, load_image
from edgead.errors import ConfigError, DataError
from edgead.models.registry import MODELS, Supervision, get_spec
from edgead.train.loader import to_batch


def check_supervision(model: str, requested: Supervision) -> None:
    """Refuse a model/supervision mismatch.

    Args:
        model: key of the model table.
        requested: the supervision of the training run (``--labelled`` on the CLI).

    Raises:
        ConfigError: a supervised model without labelled data, or an unsupervised model asked to use labels.
    """
    needed = get_spec(model).supervision
    if needed is requested:
        return
    if needed is Supervision.LABELLED:
        raise ConfigError(f"model {model!r} is supervised: it needs labelled defective images",
                          hint="put a few defective images in train/<defect_type>/ beside train/good and train with "
                               "--labelled (TrainConfig(supervision=Supervision.LABELLED))")
    supervised = sorted(name for name, spec in MODELS.items() if spec.supervision is Supervision.LABELLED)
    raise ConfigError(f"model {model!r} trains on good images only and cannot use labelled defects",
                      hint=f"drop --labelled, or use a supervised model: {supervised}")


def defective_images(category: Category, color: Color) -> list[np.ndarray]:
    """The labelled defective training images (``train/<defect_type>/``), as uint8 HxWxC.

    Args:
        category: the scanned dataset.
        color: the colour mode to load them in.

    Returns:
        The images, sorted by type then path.

    Raises:
        DataError: if ``train/`` holds no defective image (names the folder).
    """
    if not category.train_defective:
        folder = category.root / "train"
        raise DataError(f"labelled training needs defective images, but {str(folder)!r} has none besides good/",
                        hint=f"put a few defective images in {str(folder)}/<defect_type>/ "
                             "(e.g. edgead.data.labelled.make_labelled_split moves some from test/)")
    return [load_image(s.path, color) for s in category.train_defective]


def defective_batch(images: Sequence[np.ndarray], pre: Preprocess) -> torch.Tensor:
    """The defective images preprocessed like the good ones: ``[M, 3, H, W]`` normalised."""
    return to_batch(list(images), pre)


def labelled_summary(category: Category) -> dict:
    """Training metadata of the labelled run: defect counts per type."""
    counts: dict[str, int] = {}
    for s in category.train_defective:
        counts[s.defect_type] = counts.get(s.defect_type, 0) + 1
    return {"supervision": Supervision.LABELLED.value, "n_defective": len(category.train_defective),
            "defective_types": counts}
