"""The model table: one :class:`ModelSpec` per anomaly model. New models (autoencoders, EfficientAD...) add a row.

The modules are imported lazily, so reading the table (names, descriptions, defaults) needs no torch.

Example:
    >>> model = build("patchcore", (160, 320), coreset_ratio=0.05)       # doctest: +SKIP
    >>> MODELS["patchcore"].fit(model, batches, progress=False)         # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from edgead.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """One anomaly model.

    Attributes:
        module_path: ``"package.module:ClassName"`` of the ``nn.Module`` (built as ``Cls(input_hw, **params)``,
            with ``export_params()``, ``export_state()`` and ``Cls.from_state(params, state)``).
        fit_path: ``"package.module:function"`` with signature ``fit(model, batches, progress=True, **options)``
            (options such as ``epochs`` are for models that train; others ignore them).
        defaults: default constructor parameters (YAML-safe plain types).
        description: one line.
    """

    module_path: str
    fit_path: str
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def cls(self) -> type:
        """The model class (imports torch)."""
        return _resolve(self.module_path)

    @property
    def fit(self) -> Callable[..., None]:
        """The fit function (imports torch)."""
        return _resolve(self.fit_path)


MODELS: dict[str, ModelSpec] = {
    "patchcore": ModelSpec(
        module_path="edgead.models.patchcore.torch_model:PatchCore",
        fit_path="edgead.models.patchcore.train:fit",
        defaults={
            "backbone": "efficientnet_lite0",
            "layers": ["block2", "block4"],
            "feature_dim": None,
            "coreset_ratio": 0.1,
            "num_neighbors": 9,
            "projection_dim": 128,
            "sigma_px": 4.0,
            "seed": 0,
        },
        description="PatchCore: nearest neighbour to a coreset of good patch features (no training, best accuracy)",
    ),
    "padim": ModelSpec(
        module_path="edgead.models.padim.torch_model:Padim",
        fit_path="edgead.models.padim.train:fit",
        defaults={
            "backbone": "efficientnet_lite0",
            "layers": ["block2", "block3", "block4"],
            "n_features": 100,
            "eps": 0.01,
            "sigma_px": 4.0,
            "seed": 0,
        },
        description="PaDiM: per-position Gaussian of patch features, Mahalanobis map (fast fit; needs aligned parts)",
    ),
}


def _resolve(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def get_spec(name: str) -> ModelSpec:
    """Look a model up.

    Raises:
        ConfigError: if the name is unknown (lists the known ones).
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model type {name!r}", hint=f"use one of {sorted(MODELS)}")
    return MODELS[name]


def build(name: str, input_hw: Sequence[int], **overrides: Any):
    """Build a model with the table's defaults, overridden by ``overrides``.

    Args:
        name: key of :data:`MODELS`.
        input_hw: model resolution ``(height, width)``.
        **overrides: constructor parameters; unknown names are rejected.

    Returns:
        The (unfitted) model.

    Raises:
        ConfigError: if the name or a parameter is unknown or invalid.
    """
    spec = get_spec(name)
    allowed = set(spec.defaults) | {"pretrained"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(f"model {name!r} has no parameter {unknown[0]!r}", hint=f"use one of {sorted(allowed)}")
    return spec.cls(input_hw, **{**spec.defaults, **overrides})


def fit(name: str, model: Any, batches: Iterable[Any], **options: Any) -> None:
    """Fit ``model`` with the table's fit function (``options`` e.g. ``progress=False``)."""
    get_spec(name).fit(model, batches, **options)


def from_state(name: str, params: dict[str, Any], state: dict[str, Any]):
    """Rebuild a fitted model of type ``name`` from its exported params and state (see ``ModelSpec``)."""
    return get_spec(name).cls.from_state(params, state)
