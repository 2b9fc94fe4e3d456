"""Presets: a trained model's named parameter sets, one table per model (read by the registry, no torch).

``quick`` is the model's defaults, sized so that tests and the demo train in seconds to minutes on a CPU; it is far
from what the model can do. ``cpu`` is what ``edgead train`` uses on a CPU when no preset is named; ``gpu`` (where it
helps) a CUDA-sized middle; ``paper`` the published architecture and schedule, as far as our data and weights allow
(docs/models/ says where each departs from its paper). On CUDA the default is ``paper``.

Each entry records the training time per 100 training images it was measured at, on a CPU and on a CUDA GPU, or
``None`` where it was not measured (shown as "not measured", never estimated). The figures come from
``benchmarks/curves.py`` and ``benchmarks/models.py`` (docs/benchmarks.md: machine, load, command).

Example:
    >>> parse_preset("paper")
    <Preset.PAPER: 'paper'>
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping

from edgead.errors import ConfigError


class Preset(str, Enum):
    """The preset names: the training budgets, smallest first; then the feature choices of a model that trains
    without a budget (PatchCore: ``coarse``, deeper backbone stages, against its fine defaults)."""

    QUICK = "quick"
    CPU = "cpu"
    GPU = "gpu"
    PAPER = "paper"
    COARSE = "coarse"


@dataclass(frozen=True)
class PresetSpec:
    """One preset of one model.

    Attributes:
        params: overrides of the model's defaults (``quick`` has none: it is the defaults).
        note: one line: what the preset is.
        cpu_s_per_100: measured training seconds per 100 training images on the CPU (None: not measured).
        gpu_s_per_100: the same on a CUDA GPU (None: not measured).
        measured: where the times come from (benchmark, machine load).
        magnetic_tile_auroc: measured image AUROC in percent on magnetic_tile, 100 training images (the hard real
            category; docs/benchmarks.md), or None where not measured.
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    cpu_s_per_100: float | None = None
    gpu_s_per_100: float | None = None
    measured: str = ""
    magnetic_tile_auroc: float | None = None


PresetTable = Mapping[Preset, PresetSpec]

_SHARED = "benchmarks/models.py, magnetic_tile, 100 train images at 256x224, 2 shared cores under load (upper bound)"


def _curves(model: str, seconds: str = "wall seconds at nice 19 on 2 shared cores under load (upper bound)") -> str:
    """Where a ``cpu`` preset's figures come from: the learning-curve command that measures (or resumes) its point,
    and which seconds its time is."""
    return (f"OMP_NUM_THREADS=1 nice -n 19 python benchmarks/curves.py --cache DIR --models {model} --presets cpu "
            f"--levels 0: magnetic_tile, 100 train images at 256x224, {seconds}")


_FACTORS = ("benchmarks/factors.py, magnetic_tile, 100 fit images, the whole test split; image AUROC with the "
            "model's score (docs/benchmarks.md, PatchCore presets); times: OMP_NUM_THREADS=1 nice -n 19 edgead train "
            "--model patchcore --preset NAME --no-eval on a seeded 100 of magnetic_tile's training images at 256x224 "
            "(80 fitted, 20 held out), the bundle's training seconds, 2 shared cores at load average 7-8 (upper bound)")

PRESETS: dict[str, PresetTable] = {
    "patchcore": {
        Preset.QUICK: PresetSpec({}, "the defaults (fine): blocks 0-2 on the stride-4 grid, 2.5 % coreset; the "
                                     "sharpest maps, for small defects on uniform surfaces (the piped_* paper sheets)",
                                 cpu_s_per_100=265.0, magnetic_tile_auroc=71.7, measured=_FACTORS),
        Preset.COARSE: PresetSpec({"layers": ["block2", "block4"], "grid_layer": "block2", "layer_scaling": "none",
                                   "coreset_ratio": 0.1},
                                  "blocks 2+4 on the stride-8 grid, unscaled, 10 % coreset (the default before issue "
                                  "21): the deep stage looks past the lighting and grain that the fine stages flag, "
                                  "for varied surfaces (magnetic_tile); blurrier maps on piped_*. For large, "
                                  "low-contrast defects add --image-size 320x320 --set sigma_px=16 (wider maps: "
                                  "more pixel AUROC and AUPRO on large regions, with every fit image too; check "
                                  "thin cracks; docs/benchmarks.md)",
                                  cpu_s_per_100=136.0, magnetic_tile_auroc=87.6, measured=_FACTORS),
    },
    "efficientad": {
        Preset.QUICK: PresetSpec({}, "width x0.25, teacher distilled on the training images (200 steps), 200 "
                                     "student steps, batch 8, no penalty term", cpu_s_per_100=466.0, magnetic_tile_auroc=51.8, measured=_SHARED),
        Preset.CPU: PresetSpec({"teacher_data": "generic", "teacher_steps": 600, "penalty": "generic",
                                "steps": 1000},
                               "width x0.25, the shipped generic teacher (distilled 600 steps from Lite0 on the "
                               "generic image set), 1000 student steps, penalty term on generic images",
                               cpu_s_per_100=2222.0, magnetic_tile_auroc=61.0,
                               measured=_curves("efficientad", "CPU seconds of its one torch thread (4863 s wall at "
                                                                "nice 19 on 2 shared cores under load)")),
        Preset.PAPER: PresetSpec({"width": 1.0, "ae_width": 64, "teacher_data": "generic", "teacher_steps": 60000,
                                  "steps": 70000, "lr": 1e-4, "batch_size": 1, "penalty": "generic"},
                                 "PDN-S at full width, teacher distilled 60k steps on the generic image set (the paper: "
                                 "ImageNet), 70k steps at batch 1, lr 1e-4, penalty term on generic images; a GPU preset: on "
                                 "a CPU about 75 CPU h at one thread (22 teacher + 53 student), extrapolated from "
                                 "timed steps (benchmarks/step_cost.py), not a measured run"),
    },
    "draem": {
        Preset.QUICK: PresetSpec({}, "widths 8/8, depth 4, 200 steps of 8, procedural anomaly textures",
                                 cpu_s_per_100=1945.0, magnetic_tile_auroc=50.2, measured=_SHARED),
        Preset.CPU: PresetSpec({"steps": 800, "anomaly_source": "generic"},
                               "widths 8/8, depth 4, 800 steps, anomaly textures from the generic image set",
                               cpu_s_per_100=931.0, magnetic_tile_auroc=72.5,
                               measured=_curves("draem", "training CPU seconds at one thread")),
        Preset.GPU: PresetSpec({"rec_width": 64, "disc_width": 32, "depth": 5, "steps": 5000, "lr": 1e-4,
                                "anomaly_source": "generic"}, "widths 64/32, depth 5, 5000 steps, lr 1e-4"),
        Preset.PAPER: PresetSpec({"rec_width": 128, "disc_width": 64, "depth": 5, "steps": 8750, "lr": 1e-4,
                                  "anomaly_source": "generic"},
                                 "widths 128/64, depth 5, 8750 steps of 8 (700 epochs of 100 images), lr 1e-4, "
                                 "anomaly textures from the generic image set (the paper: DTD); a GPU preset: on a CPU about "
                                 "173 CPU h at one thread, extrapolated from timed steps (benchmarks/step_cost.py), "
                                 "not a measured run"),
    },
    "vt-adl": {
        Preset.QUICK: PresetSpec({}, "dim 64, depth 3, 4 heads, 20 epochs", cpu_s_per_100=387.0, magnetic_tile_auroc=53.0, measured=_SHARED),
        Preset.CPU: PresetSpec({"epochs": 80}, "dim 64, depth 3, 4 heads, 80 epochs (still at chance on "
                                               "magnetic_tile: no CPU-sized VT-ADL beats it; docs/models/vt-adl.md)",
                               cpu_s_per_100=1816.0, magnetic_tile_auroc=54.0,
                               measured=_curves("vt-adl", "training CPU seconds at one thread")),
        Preset.PAPER: PresetSpec({"dim": 512, "depth": 6, "heads": 8, "epochs": 400, "lr": 1e-4},
                                 "dim 512, depth 6, 8 heads, 400 epochs, lr 1e-4"),
    },
    "piade": {
        Preset.QUICK: PresetSpec({}, "Lite0 backbone, 10 epochs", cpu_s_per_100=199.0, magnetic_tile_auroc=59.7, measured=_SHARED),
        Preset.CPU: PresetSpec({"epochs": 40}, "Lite0 backbone, 40 epochs", cpu_s_per_100=792.0,
                               magnetic_tile_auroc=60.8, measured=_curves("piade")),
        Preset.PAPER: PresetSpec({"epochs": 200, "lr": 1e-4},
                                 "the architecture of the defaults, 200 epochs at lr 1e-4 (the paper trains far "
                                 "longer than the defaults; its exact schedule is not reproduced)"),
    },
    "ae-knn": {
        Preset.QUICK: PresetSpec({}, "32 px patches on the half-size image, 30 epochs", cpu_s_per_100=57.0, magnetic_tile_auroc=58.2,
                                 measured=_SHARED),
        Preset.CPU: PresetSpec({"epochs": 120}, "32 px patches on the half-size image, 120 epochs",
                               cpu_s_per_100=412.0, magnetic_tile_auroc=59.9, measured=_curves("ae-knn")),
        Preset.PAPER: PresetSpec({"downscale": 1, "epochs": 200},
                                 "32 px patches at full resolution, 200 epochs (the paper's schedule is not "
                                 "reproduced)"),
    },
}
"""Every trained model's preset table (the registry's rows point here)."""

CPU_DEFAULTS: dict[str, Preset] = {name: Preset.CPU for name, table in PRESETS.items() if Preset.CPU in table}
"""The preset ``train`` uses on a CPU when none is named."""


def parse_preset(value: Preset | str) -> Preset:
    """A preset name as :class:`Preset`.

    Raises:
        ConfigError: for an unknown name (lists the known ones).
    """
    try:
        return Preset(getattr(value, "value", value))
    except ValueError as exc:
        raise ConfigError(f"unknown preset {value!r}", hint=f"use one of {[p.value for p in Preset]}") from exc


def seconds_text(seconds: float | None) -> str:
    """``"466 s"``, ``"1.5 h"``, or ``"not measured"``."""
    if seconds is None:
        return "not measured"
    if seconds < 600:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def preset_rows(names: Iterable[str] | None = None) -> list[dict]:
    """One plain dict per (model, preset) of the trained models (``names``: only these), for ``edgead models``,
    ``train --help`` and docs: model, preset, whether it is the CPU default, note, params, the two times."""
    from edgead.models.registry import MODELS, get_spec

    rows = []
    for name in (list(names) if names else list(MODELS)):
        spec = get_spec(name)
        for preset, entry in spec.presets.items():
            rows.append({"model": name, "preset": preset.value, "cpu_default": preset is spec.cpu_preset,
                         "note": entry.note, "params": dict(entry.params), "cpu_s_per_100": entry.cpu_s_per_100,
                         "gpu_s_per_100": entry.gpu_s_per_100, "measured": entry.measured,
                         "magnetic_tile_auroc": entry.magnetic_tile_auroc})
    return rows


def render_presets(names: Iterable[str] | None = None) -> str:
    """The preset table as text: per model, each preset with its training time per 100 images on CPU and GPU."""
    lines = ["presets (train --preset NAME; default: paper on CUDA, the one marked * on a CPU; times: training "
             "seconds per 100 images, measured; mt: image AUROC % on magnetic_tile, 100 train images):"]
    model = None
    for r in preset_rows(names):
        if r["model"] != model:
            model = r["model"]
            lines.append(f"  {model}")
        lines.append(preset_line(r))
    return "\n".join(lines) + "\n"


def preset_line(row: Mapping[str, Any]) -> str:
    """One :func:`preset_rows` row as a line of the table (``*``: the CPU default)."""
    mark = "*" if row["cpu_default"] else " "
    auroc = "-" if row["magnetic_tile_auroc"] is None else f"{row['magnetic_tile_auroc']:.1f}"
    return (f"   {mark}{row['preset']:<6} CPU {seconds_text(row['cpu_s_per_100']):>13}, GPU "
            f"{seconds_text(row['gpu_s_per_100']):>13}, mt {auroc:>4}  {row['note']}")


__all__ = ["CPU_DEFAULTS", "PRESETS", "Preset", "PresetSpec", "PresetTable", "parse_preset", "preset_line", "preset_rows", "render_presets",
           "seconds_text"]
