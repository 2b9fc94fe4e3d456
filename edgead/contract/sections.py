"""The sections of ``edgead.yaml`` as frozen dataclasses, and the reader that parses them with errors naming the key.

:class:`~edgead.contract.meta.BundleMeta` is made of these; see there.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from edgead.contract.graph import Color, InputSpec, Precision
from edgead.errors import BundleError


class Reader:
    """Typed access to one section of the YAML mapping; every error names ``where.key``."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, Mapping):
            raise BundleError(f"{where} is not a mapping (got {type(data).__name__})",
                              hint="see docs/bundle-format.md; never edit edgead.yaml by hand")
        self.data, self.where, self.used = data, where, set()

    def get(self, key: str, conv: Callable = str, default: Any = ...) -> Any:
        """``conv(value)`` of ``key``; ``default`` when it is absent or null (no default: required)."""
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise BundleError(f"{self.where} lacks {key!r}", hint="see docs/bundle-format.md for the keys")
            return default
        value = self.data[key]
        if value is None:
            if default is ...:
                raise BundleError(f"{self.where}.{key} is empty", hint="see docs/bundle-format.md for the keys")
            return default
        try:
            return conv(value)
        except (TypeError, ValueError, BundleError) as exc:
            detail = exc.message if isinstance(exc, BundleError) else repr(value)
            raise BundleError(f"{self.where}.{key}: {detail} is not valid ({type(exc).__name__})",
                              hint="see docs/bundle-format.md for the keys") from None

    def section(self, key: str) -> "Reader":
        self.used.add(key)
        if key not in self.data:
            raise BundleError(f"{self.where} lacks {key!r}", hint="see docs/bundle-format.md for the keys")
        return Reader(self.data[key], f"{self.where}.{key}")

    def optional(self, key: str, parse: Callable) -> Any:
        """``parse(section)``, or None when the section is absent or null."""
        self.used.add(key)
        return None if self.data.get(key) is None else parse(self.section(key))

    def rest(self) -> dict:
        """The keys not read: kept as they are."""
        return {k: v for k, v in self.data.items() if k not in self.used}


def _emit(obj, order: tuple[str, ...]) -> dict:
    """``order``'s attributes that are not None, then ``obj.extra``."""
    out = {k: getattr(obj, k) for k in order if getattr(obj, k) is not None}
    out.update(obj.extra)
    return out


def _floats(value) -> tuple[float, ...]:
    return tuple(float(v) for v in value)


def _positive(value) -> int:
    n = int(value)
    if n <= 0:
        raise ValueError(f"{value!r} <= 0")
    return n


@dataclass(frozen=True)
class ModelInfo:
    """``model``: the key of the model table and the constructor parameters (enough to rebuild from state.npz)."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, r: Reader) -> "ModelInfo":
        return cls(r.get("type"), r.get("params", dict, {}))

    def to_dict(self) -> dict:
        return {"type": self.type, "params": dict(self.params)}


@dataclass(frozen=True)
class InputInfo:
    """``input``: the graph input (uint8 NHWC); ``height``/``width`` are the model resolution."""

    height: int
    width: int
    channels: int
    color: Color
    dtype: str = "uint8"
    layout: str = "NHWC"

    @classmethod
    def parse(cls, r: Reader) -> "InputInfo":
        channels = r.get("channels", int)
        if channels not in (1, 3):
            raise BundleError(f"{r.where}.channels: {channels} is not 1 (gray) or 3 (RGB)")
        color = r.get("color", Color, Color.of_channels(channels))
        if color.channels != channels:
            raise BundleError(f"{r.where}: color {color.value!r} does not have {channels} channel(s)")
        info = cls(r.get("height", _positive), r.get("width", _positive), channels, color,
                   r.get("dtype", str, "uint8"), r.get("layout", str, "NHWC"))
        if (info.dtype, info.layout) != ("uint8", "NHWC"):
            raise BundleError(f"{r.where}: {info.dtype} {info.layout} input; the graph contract takes uint8 NHWC")
        return info

    @property
    def spec(self) -> InputSpec:
        """The engine-side :class:`InputSpec`."""
        return InputSpec(self.height, self.width, self.channels)

    def to_dict(self) -> dict:
        return {"height": self.height, "width": self.width, "channels": self.channels, "color": self.color.value,
                "dtype": self.dtype, "layout": self.layout}


@dataclass(frozen=True)
class Preprocessing:
    """``preprocessing`` (done inside the graph): resize mode, and the backbone's mean/std of a [0, 1] RGB image."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str = "bilinear"

    @classmethod
    def parse(cls, r: Reader) -> "Preprocessing":
        return cls(r.get("mean", _floats), r.get("std", _floats), r.get("resize", str, "bilinear"))

    def to_dict(self) -> dict:
        return {"resize": self.resize, "mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class Training:
    """``training``: what the model was fitted on (after ``edgead update``: the last update).

    Attributes:
        data: the data folder, absolute (None when not recorded).
        data_fingerprint: ``edgead.data.fingerprint`` of the images fitted on.
        n_images: images fitted on; n_validation: good images the threshold was calibrated on.
        seed: the split's and the model's seed.
        seconds: wall time of the job.
        onnx_parity_max_rel: largest relative difference of ONNX Runtime's raw scores from torch's.
        supervision, n_defective, defective_types: a labelled run's defects in ``train/`` (absent otherwise).
        continual: how ``edgead update`` made it (strategy, source bundle, strategy details).
        device: where the model was trained (``cpu``, ``cuda:0``; ``edgead train --device``), None when not recorded.
        preset: the model preset trained with (``edgead.models.presets``; None: a model without presets, or a
            bundle made before presets).
        extra: keys this edgead does not know, as written.
    """

    data: str | None = None
    data_fingerprint: str | None = None
    n_images: int | None = None
    n_validation: int | None = None
    seed: int | None = None
    seconds: float | None = None
    onnx_parity_max_rel: float | None = None
    supervision: str | None = None
    n_defective: int | None = None
    defective_types: Mapping[str, int] | None = None
    continual: Mapping[str, Any] | None = None
    device: str | None = None
    preset: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _ORDER = ("data", "data_fingerprint", "n_images", "n_validation", "seed", "device", "preset", "supervision",
              "n_defective", "defective_types", "continual", "seconds", "onnx_parity_max_rel")

    @classmethod
    def parse(cls, r: Reader) -> "Training":
        t = cls(r.get("data", str, None), r.get("data_fingerprint", str, None), r.get("n_images", int, None),
                r.get("n_validation", int, None), r.get("seed", int, None), r.get("seconds", float, None),
                r.get("onnx_parity_max_rel", float, None), r.get("supervision", str, None),
                r.get("n_defective", int, None), r.get("defective_types", dict, None), r.get("continual", dict, None),
                r.get("device", str, None), r.get("preset", str, None))
        return dataclasses.replace(t, extra=r.rest())

    def to_dict(self) -> dict:
        out = _emit(self, self._ORDER)
        for key in ("defective_types", "continual"):
            if key in out:
                out[key] = dict(out[key])
        return out


@dataclass(frozen=True)
class Task:
    """One learnt task (``tasks`` entry, oldest first).

    Attributes:
        name: short name (default: the data folder's name); unique within a bundle.
        data: the data folder, absolute, as given at training time.
        data_fingerprint: ``edgead.data.fingerprint`` of its ``train/good`` images.
        n_images: images the model was fitted on.
        n_validation: held-out good images of that task (the threshold's calibration set at the time).
        added_utc: when the task was added (ISO 8601, UTC).
        strategy: how it was added (``edgead.continual.strategies.Strategy`` value).
    """

    name: str
    data: str
    data_fingerprint: str
    n_images: int
    n_validation: int
    added_utc: str
    strategy: str

    @classmethod
    def parse(cls, r: Reader) -> "Task":
        return cls(r.get("name"), r.get("data"), r.get("data_fingerprint"), r.get("n_images", int),
                   r.get("n_validation", int), r.get("added_utc"), r.get("strategy"))

    def to_dict(self) -> dict:
        """Plain YAML-safe mapping."""
        return asdict(self)


@dataclass(frozen=True)
class Replay:
    """``replay``: the replay buffer in ``replay.npz`` (after ``edgead update``; docs/continual.md).

    Attributes:
        budget: total replay images over all tasks.
        val_per_task: held-out validation images kept per task.
        replay_images, replay_bytes, validation_images, validation_bytes: the buffer's counts and sizes.
        per_task_replay, per_task_validation: images per task, in task order.
        extra: the other keys (``policy``), as written.
    """

    budget: int = 0
    val_per_task: int | None = None
    replay_images: int | None = None
    replay_bytes: int | None = None
    validation_images: int | None = None
    validation_bytes: int | None = None
    per_task_replay: tuple[int, ...] | None = None
    per_task_validation: tuple[int, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _ORDER = ("replay_images", "replay_bytes", "validation_images", "validation_bytes", "per_task_replay",
              "per_task_validation", "budget", "val_per_task")

    @classmethod
    def parse(cls, r: Reader) -> "Replay":
        ints = lambda v: tuple(int(x) for x in v)  # noqa: E731
        rep = cls(r.get("budget", int, 0), r.get("val_per_task", int, None), r.get("replay_images", int, None),
                  r.get("replay_bytes", int, None), r.get("validation_images", int, None),
                  r.get("validation_bytes", int, None), r.get("per_task_replay", ints, None),
                  r.get("per_task_validation", ints, None))
        return dataclasses.replace(rep, extra=r.rest())

    def to_dict(self) -> dict:
        out = _emit(self, self._ORDER)
        for k in ("per_task_replay", "per_task_validation"):
            if k in out:
                out[k] = list(out[k])
        return out


@dataclass(frozen=True)
class Conversion:
    """``conversion`` (converted bundles): for which target and at which precision the graph was converted.

    Attributes:
        target, backend: the target profile and its runtime.
        precision: the graph's precision (``fp32`` casts nothing; ``fp16`` casts, ``int8`` Q/DQ in the graph).
        source_bundle_sha256: the FP32 bundle it was converted from.
        gate: the accuracy gate's report (None without ``--check``).
        forced: written although the gate failed.
        openvino: (``backend: openvino``) the runtime options the gate approved: ``inference_precision``, ``f32``
            or ``bf16``, for the layers the graph does not quantize.
        details: what the converter recorded (rule, recipe, threshold transfer, INT8 settings), as written.
    """

    target: str
    backend: str
    precision: Precision
    source_bundle_sha256: str = ""
    gate: Mapping[str, Any] | None = None
    forced: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    openvino: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, r: Reader) -> "Conversion":
        precision = r.get("precision", Precision)
        if precision is Precision.AUTO:
            raise BundleError(f"{r.where}.precision: 'auto' is not a graph precision")
        c = cls(r.get("target"), r.get("backend"), precision, r.get("source_bundle_sha256", str, ""),
                r.get("gate", dict, None), r.get("forced", bool, False), openvino=r.get("openvino", dict, None))
        return dataclasses.replace(c, details=r.rest())

    def to_dict(self) -> dict:
        out = {"target": self.target, "backend": self.backend, "precision": self.precision.value,
               "source_bundle_sha256": self.source_bundle_sha256, **self.details,
               "gate": None if self.gate is None else dict(self.gate), "forced": self.forced}
        if self.openvino is not None:
            out["openvino"] = dict(self.openvino)
        return out
