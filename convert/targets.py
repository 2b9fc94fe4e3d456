"""Deployment targets: one YAML file per target in ``convert/profiles/``; the folder is the table.

Adding a target means adding a file. Every key is required (use ``null`` for "not applicable"), unknown keys are
refused, and every error names the file and the key.

Example:
    >>> targets = load_targets()
    >>> targets["jetson-orin-nano"].dla is None
    True
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from edgead.contract.graph import Precision
from edgead.errors import ConfigError
from edgead.infer import BackendKind

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


@dataclass(frozen=True)
class Dla:
    """Deep-learning accelerator use on Jetson: which core, and whether unsupported layers fall back to the GPU."""

    core: int
    gpu_fallback: bool


@dataclass(frozen=True)
class Target:
    """One deployment target (a ``convert/profiles/<name>.yaml`` file).

    Attributes:
        name: the file stem, e.g. ``jetson-orin-nx``.
        description: one line for humans.
        backend: the runtime that executes the model there.
        precisions: precisions this target may run (never ``AUTO``).
        workspace_mib: TensorRT builder workspace limit.
        dla: DLA settings, or None (no DLA, or not used).
        batch_size: the batch the engine is optimised for (also its maximum).
        min_input_hw, opt_input_hw, max_input_hw: (height, width) range of input frames (TensorRT profile).
        compute_capability: GPU compute capability ``"8.7"``, or None for CPU targets.
        jetpack: JetPack version expected on the device, or None.
        tensorrt: TensorRT version expected on the device, or None.
        openvino: for a CPU target, the OpenVINO candidates ``--precision auto`` also builds (``fp32``, ``bf16``,
            ``int8``), each with the CPU features (``/proc/cpuinfo`` flags) it keys on: built when the CPU has any
            of them, or always when none are listed. None: no OpenVINO candidates.
    """

    name: str
    description: str
    backend: BackendKind
    precisions: tuple[Precision, ...]
    workspace_mib: int
    dla: Dla | None
    batch_size: int
    min_input_hw: tuple[int, int]
    opt_input_hw: tuple[int, int]
    max_input_hw: tuple[int, int]
    compute_capability: str | None
    jetpack: str | None
    tensorrt: str | None
    openvino: dict[str, tuple[str, ...]] | None = None


OPENVINO_PRECISIONS = ("fp32", "bf16", "int8")
"""The OpenVINO candidates: FP32, BF16 inference of the FP32 graph, and the INT8 Q/DQ graph."""

KEYS = tuple(f for f in Target.__dataclass_fields__ if f != "name")


def _fail(path: Path, key: str, why: str) -> ConfigError:
    return ConfigError(f"target profile {path.name}: key {key!r} {why}", hint=f"fix {path}")


def _hw(path: Path, raw: dict, key: str) -> tuple[int, int]:
    value = raw[key]
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
        raise _fail(path, key, f"must be [height, width] of positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def _enum(path: Path, key: str, cls, value):
    try:
        return cls(value)
    except ValueError:
        raise _fail(path, key, f"is {value!r}, expected one of {[m.value for m in cls]}") from None


def _positive_int(path: Path, raw: dict, key: str, minimum: int = 1) -> int:
    value = raw[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _fail(path, key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _opt_str(path: Path, raw: dict, key: str) -> str | None:
    value = raw[key]
    if value is not None and not isinstance(value, str):
        raise _fail(path, key, f"must be a quoted string or null, got {value!r}")
    return value


def _dla(path: Path, raw: dict) -> Dla | None:
    value = raw["dla"]
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"core", "gpu_fallback"}:
        raise _fail(path, "dla", f"must be null or {{core: N, gpu_fallback: true|false}}, got {value!r}")
    if not isinstance(value["core"], int) or value["core"] < 0 or not isinstance(value["gpu_fallback"], bool):
        raise _fail(path, "dla", f"has a bad core or gpu_fallback: {value!r}")
    return Dla(core=value["core"], gpu_fallback=value["gpu_fallback"])


def _openvino(path: Path, raw: dict, backend: BackendKind) -> dict[str, tuple[str, ...]] | None:
    value = raw["openvino"]
    if value is None:
        return None
    if backend is not BackendKind.ONNXRUNTIME:
        raise _fail(path, "openvino", "is for CPU targets (backend: onnxruntime) only; use null")
    if not isinstance(value, dict) or not value or not set(value) <= set(OPENVINO_PRECISIONS):
        raise _fail(path, "openvino", f"must map some of {list(OPENVINO_PRECISIONS)} to lists of CPU feature flags, "
                                      f"got {value!r}")
    out = {}
    for precision, flags in value.items():
        if not isinstance(flags, list) or not all(isinstance(f, str) and f for f in flags):
            raise _fail(path, "openvino", f"{precision}: must be a list of CPU feature flags, got {flags!r}")
        out[precision] = tuple(flags)
    return out


def parse_target(path: str | os.PathLike) -> Target:
    """Read and validate one profile file.

    Args:
        path: a ``<name>.yaml`` profile.

    Returns:
        The :class:`Target` (named after the file stem).

    Raises:
        ConfigError: naming the file and the key that is missing, unknown or invalid.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"target profile {path.name} is not valid YAML ({exc})", hint=f"fix {path}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"target profile {path.name} is not a mapping", hint=f"fix {path}")
    for key in KEYS:
        if key not in raw:
            raise _fail(path, key, "is missing")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise _fail(path, unknown[0], f"is unknown (known keys: {', '.join(KEYS)})")
    backend = _enum(path, "backend", BackendKind, raw["backend"])
    if backend is BackendKind.OPENVINO:
        raise _fail(path, "backend", "is 'openvino': a CPU target runs onnxruntime and lists its OpenVINO candidates "
                                     "under the key 'openvino'")
    if not isinstance(raw["precisions"], list) or not raw["precisions"]:
        raise _fail(path, "precisions", f"must be a non-empty list, got {raw['precisions']!r}")
    precisions = tuple(_enum(path, "precisions", Precision, p) for p in raw["precisions"])
    if Precision.AUTO in precisions:
        raise _fail(path, "precisions", "may not list 'auto'")
    hw = {k: _hw(path, raw, k) for k in ("min_input_hw", "opt_input_hw", "max_input_hw")}
    lo, opt, hi = hw["min_input_hw"], hw["opt_input_hw"], hw["max_input_hw"]
    if not (lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]):
        raise _fail(path, "opt_input_hw", f"{opt} must lie between min {lo} and max {hi}")
    cc = _opt_str(path, raw, "compute_capability")
    if backend is BackendKind.TENSORRT and cc is None:
        raise _fail(path, "compute_capability", "is required for a tensorrt target")
    return Target(
        name=path.stem, description=str(raw["description"]), backend=backend, precisions=precisions,
        workspace_mib=_positive_int(path, raw, "workspace_mib", minimum=0), dla=_dla(path, raw),
        batch_size=_positive_int(path, raw, "batch_size"), min_input_hw=lo, opt_input_hw=opt, max_input_hw=hi,
        compute_capability=cc, jetpack=_opt_str(path, raw, "jetpack"), tensorrt=_opt_str(path, raw, "tensorrt"),
        openvino=_openvino(path, raw, backend))


def load_targets(folder: str | os.PathLike = PROFILES_DIR) -> dict[str, Target]:
    """Load every ``*.yaml`` profile of ``folder``.

    Args:
        folder: the profile folder (default: the one shipped with edgead).

    Returns:
        name -> :class:`Target`, sorted by name.

    Raises:
        ConfigError: if the folder has no profile, or a profile is malformed (names file and key).
    """
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise ConfigError(f"no target profile (*.yaml) in {folder}", hint="reinstall edgead or pass another folder")
    return {t.name: t for t in map(parse_target, files)}


def get_target(name: str | Target, folder: str | os.PathLike = PROFILES_DIR) -> Target:
    """The target called ``name`` (a :class:`Target` is returned as is).

    Raises:
        ConfigError: unknown name (lists the known ones).
    """
    if isinstance(name, Target):
        return name
    targets = load_targets(folder)
    if name not in targets:
        raise ConfigError(f"unknown target {name!r}", hint=f"use one of: {', '.join(targets)}")
    return targets[name]
