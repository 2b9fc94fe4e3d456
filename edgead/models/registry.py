"""The model table: one :class:`ModelSpec` per anomaly model. New models (autoencoders, EfficientAD...) add a row.

A trained model also has a preset table (``edgead.models.presets``): named parameter sets from ``quick`` (the
defaults: CPU-sized, for tests and the demo) to ``paper``. The modules are imported lazily, so reading the tables
(names, descriptions, defaults, presets) needs no torch.

Example:
    >>> model = build("patchcore", (160, 320), coreset_ratio=0.05)       # doctest: +SKIP
    >>> model = build("draem", (256, 224), preset="cpu")                # doctest: +SKIP
    >>> MODELS["patchcore"].fit(model, batches, progress=False)         # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable, Sequence

from edgead.errors import ConfigError
from edgead.models.presets import CPU_DEFAULTS, PRESETS, Preset, PresetSpec, PresetTable, parse_preset


class Supervision(str, Enum):
    """What a model trains on: good images only, or good images plus a few labelled defective ones."""

    UNSUPERVISED = "unsupervised"  # train/good only (every anomaly detector)
    LABELLED = "labelled"  # train/good + train/<defect_type>/ (supervised, imbalanced: capsnet)


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
        supervision: :attr:`Supervision.LABELLED` models get ``defective=`` (normalised defective training images)
            from the pipeline's labelled flow; unsupervised ones never see a defect.
        presets: the model's preset table (``edgead.models.presets.PRESETS``); empty for models that train
            without a budget (PatchCore, PaDiM).
        cpu_preset: the preset ``train`` uses on a CPU when none is named (``paper`` on CUDA).
    """

    module_path: str
    fit_path: str
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    supervision: Supervision = Supervision.UNSUPERVISED
    presets: PresetTable = field(default_factory=dict)
    cpu_preset: Preset | None = None

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
            "layers": ["block0", "block1", "block2"],
            "grid_layer": "block1",
            "layer_scaling": "mean-norm",
            "feature_dim": None,
            "coreset_ratio": 0.025,
            "num_neighbors": 9,
            "projection_dim": 128,
            "sigma_px": 4.0,
            "patch_size": 3,
            "seed": 0,
        },
        description="PatchCore: nearest neighbour to a coreset of good patch features on a stride-4 grid (blocks "
        "0-2, each scaled to equal weight; no training, sharpest maps; --preset coarse: blocks 2+4 for varied "
        "surfaces such as magnetic_tile)",
        presets=PRESETS["patchcore"],
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
    "draem": ModelSpec(
        module_path="edgead.models.draem.torch_model:Draem",
        fit_path="edgead.models.draem.train:fit",
        defaults={
            "rec_width": 8,
            "disc_width": 8,
            "depth": 4,
            "steps": 200,
            "lr": 1e-3,
            "anomaly_probability": 0.5,
            "anomaly_source": "procedural",
            "seed": 0,
        },
        description="DRAEM: reconstruction + segmentation trained on Perlin/texture anomalies (defaults = quick preset: "
        "widths 8, 200 steps; --preset paper: 128/64, 700 epochs)",
        presets=PRESETS["draem"],
        cpu_preset=CPU_DEFAULTS["draem"],
    ),
    "vt-adl": ModelSpec(
        module_path="edgead.models.vt_adl.torch_model:VTADL",
        fit_path="edgead.models.vt_adl.train:fit",
        defaults={
            "patch_size": 16,
            "dim": 64,
            "depth": 3,
            "heads": 4,
            "mlp_ratio": 2,
            "rec_channels": 64,
            "n_gaussians": 150,
            "mdn_noise": 0.2,
            "epochs": 20,
            "lr": 1e-3,
            "seed": 0,
        },
        description="VT-ADL: ViT reconstruction + mixture density on patch embeddings, NLL map (defaults = quick preset: "
        "dim 64, depth 3, 20 epochs; --preset paper: dim 512, depth 6, 400 epochs)",
        presets=PRESETS["vt-adl"],
        cpu_preset=CPU_DEFAULTS["vt-adl"],
    ),
    "efficientad": ModelSpec(
        module_path="edgead.models.efficientad.torch_model:EfficientAd",
        fit_path="edgead.models.efficientad.train:fit",
        defaults={
            "width": 0.25,
            "ae_width": 32,
            "teacher_source": "efficientnet_lite0",
            "teacher_steps": 200,
            "steps": 200,
            "lr": 1e-3,
            "holdout_fraction": 0.2,
            "seed": 0,
            "size": "S",
            "teacher_data": "train",
            "penalty": "none",
            "batch_size": 8,
        },
        description="EfficientAD-S/M: PDN teacher (distilled from Lite0 block2+3, on the training images or the "
        "generic image set) vs student and autoencoder (defaults = quick preset: width x0.25, 200+200 steps; --preset "
        "paper: full width, generic teacher, 70k steps); size M: PDN-M, 2x wider and a 1x1 + 3x3 conv more (about "
        "3.6x the weights, same receptive field)",
        presets=PRESETS["efficientad"],
        cpu_preset=CPU_DEFAULTS["efficientad"],
    ),
    "piade": ModelSpec(
        module_path="edgead.models.piade.torch_model:Piade",
        fit_path="edgead.models.piade.train:fit",
        defaults={
            "feature_layer": "block4",
            "se_reduction": 4,
            "pyramid_channels": 64,
            "capsule_dim": 8,
            "vector_dim": 64,
            "routing_iterations": 3,
            "up_channels": 16,
            "decoder_width": 64,
            "perceptual_layers": ["stem", "block1"],
            "image_score": "map-max",
            "epochs": 10,
            "lr": 1e-3,
            "seed": 0,
            "brightness": "keep",
        },
        description="PIADE: SE backbone + pooling pyramid + capsule routing, reconstruction residual MSE + "
        "perceptual + 1-SSIM, image score its filtered map maximum (image_score: loss for the paper's; Lite0 "
        "backbone, 10 epochs)",
        presets=PRESETS["piade"],
        cpu_preset=CPU_DEFAULTS["piade"],
    ),
    "ae-knn": ModelSpec(
        module_path="edgead.models.ae_knn.torch_model:AeKnn",
        fit_path="edgead.models.ae_knn.train:fit",
        defaults={
            "embed_layer": "block4",
            "patch_size": 32,
            "stride": 16,
            "downscale": 2,
            "width": 32,
            "hidden": 64,
            "l1_weight": 1e-3,
            "num_neighbors": 15,
            "sigma_px": 4.0,
            "epochs": 30,
            "lr": 1e-3,
            "seed": 0,
            "brightness": "keep",
        },
        description="AE-kNN: conditional patch autoencoder, difference map embedded by the backbone, one-class "
        "kNN score (k=15; 30 epochs on the half-size image)",
        presets=PRESETS["ae-knn"],
        cpu_preset=CPU_DEFAULTS["ae-knn"],
    ),
    "capsnet": ModelSpec(
        module_path="edgead.models.capsnet.torch_model:CapsNet",
        fit_path="edgead.models.capsnet.train:fit",
        defaults={
            "backbone": "efficientnet_lite0",
            "feature_layer": "block3",
            "primary_types": 8,
            "primary_dim": 8,
            "capsule_dim": 16,
            "routing_iterations": 3,
            "recon_stride": 8,
            "recon_weight": 0.5,
            "score_recon_weight": 1.0,
            "dropout": 0.1,
            "steps": 300,
            "lr": 1e-3,
            "seed": 0,
        },
        description="CapsNet (supervised, needs --labelled): frozen Lite0 to block3, shared-weight primary capsules, "
        "routing to normal/anomalous capsules, class-balanced margin loss + reconstruction of good images",
        supervision=Supervision.LABELLED,
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


def preset_spec(name: str, preset: Preset | str) -> PresetSpec:
    """The table entry of one model's preset (``quick`` of a model without presets: its defaults).

    Raises:
        ConfigError: if the model has no such preset (naming those it has).
    """
    spec, chosen = get_spec(name), parse_preset(preset)
    if chosen is Preset.QUICK and not spec.presets:  # a model without a table: its defaults are its quick preset
        return PresetSpec({}, "the defaults")
    if chosen not in spec.presets:
        have = [p.value for p in spec.presets]
        raise ConfigError(f"model {name!r} has no preset {chosen.value!r}",
                          hint=f"use one of {have}" if have else f"{name} trains without a budget: omit --preset or use quick")
    return spec.presets[chosen]


def default_preset(name: str, device_type: str) -> Preset | None:
    """The preset ``train`` uses when none is named: ``paper`` on CUDA, the model's ``cpu_preset`` otherwise.

    Args:
        name: key of :data:`MODELS`.
        device_type: where the model trains (``"cpu"`` or ``"cuda"``, a ``torch.device.type``).

    Returns:
        The preset, or None for a model without presets.
    """
    spec = get_spec(name)
    if not spec.presets:
        return None
    if device_type == "cuda" and Preset.PAPER in spec.presets:
        return Preset.PAPER
    return spec.cpu_preset


def model_params(name: str, preset: Preset | str | None = None, **overrides: Any) -> dict[str, Any]:
    """The constructor parameters: the table's defaults, then the preset's, then ``overrides``.

    Raises:
        ConfigError: if the name, the preset or a parameter is unknown.
    """
    spec = get_spec(name)
    allowed = set(spec.defaults) | {"pretrained"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(f"model {name!r} has no parameter {unknown[0]!r}", hint=f"use one of {sorted(allowed)}")
    chosen = dict(preset_spec(name, preset).params) if preset is not None else {}
    return {**spec.defaults, **chosen, **overrides}


def build(name: str, input_hw: Sequence[int], preset: Preset | str | None = None, **overrides: Any):
    """Build a model with the table's defaults, then the ``preset``'s parameters, then ``overrides``.

    Args:
        name: key of :data:`MODELS`.
        input_hw: model resolution ``(height, width)``.
        preset: a preset of the model's table (None: the defaults, which are ``quick``).
        **overrides: constructor parameters; unknown names are rejected.

    Returns:
        The (unfitted) model.

    Raises:
        ConfigError: if the name, the preset or a parameter is unknown or invalid.
    """
    return get_spec(name).cls(input_hw, **model_params(name, preset, **overrides))


def fit(name: str, model: Any, batches: Iterable[Any], **options: Any) -> None:
    """Fit ``model`` with the table's fit function (``options`` e.g. ``progress=False``)."""
    get_spec(name).fit(model, batches, **options)


def from_state(name: str, params: dict[str, Any], state: dict[str, Any]):
    """Rebuild a fitted model of type ``name`` from its exported params and state (see ``ModelSpec``)."""
    return get_spec(name).cls.from_state(params, state)
