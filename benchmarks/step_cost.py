"""Step cost: the seconds one training step of a preset takes on this CPU, and its whole schedule extrapolated.

Usage:
    nice -n 10 python benchmarks/step_cost.py --model efficientad --preset paper [--steps 30] [--warmup 3]
        [--threads 1 2] [--rounds 2] [--image-size 256x256] [--docs]

A preset whose whole schedule is far beyond what the CPU can afford (EfficientAD's and DRAEM's ``paper``: hours to
days) is measured here by a few dozen of its steps instead of a finished run. Each phase of the model's training
(:data:`PHASES`: EfficientAD's teacher distillation, then its student and autoencoder; DRAEM's one loop) runs its
real code for ``--steps`` steps at the preset's parameters, on magnetic_tile's training images (or random images
when the datasets are absent) at ``--image-size``; ``optimise_step`` is wrapped to time each step, from the end of
one step to the end of the next (data, forward, backward, update), and the first ``--warmup`` steps are dropped.
The thread counts alternate in one process (``--rounds`` times), so that a change of the machine's load shows in
both. The schedule's cost is the median step times the preset's steps: an extrapolation, not a measured run (the
presets' ``cpu_s_per_100`` are measured runs only). The student phase runs on a teacher of random weights saved
under the preset's key in a temporary cache, so that no teacher is distilled for it: a step costs the same whatever
the teacher's weights.

``--docs`` writes ``benchmarks/results/step_cost.json`` (rows merged by model, preset, phase, threads) and the
``step-cost`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATASETS, ROOT, machine, merge_rows, save_json, update_section  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "step_cost.json"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class StepClock:
    """Wraps a module's ``optimise_step`` and records the wall and CPU time at the end of every step."""

    def __init__(self, module) -> None:
        self.module, self.wall, self.cpu = module, [], []

    def __enter__(self) -> "StepClock":
        original = self.original = self.module.optimise_step

        def timed(*args, **kwargs):
            value = original(*args, **kwargs)
            self.wall.append(time.perf_counter())
            self.cpu.append(cpu_seconds())
            return value

        self.module.optimise_step = timed
        return self

    def __exit__(self, *exc) -> None:
        self.module.optimise_step = self.original

    def steps(self, warmup: int) -> tuple[list[float], list[float]]:
        """Wall and CPU seconds of each step after the first ``warmup`` (end of one step to the end of the next)."""
        wall, cpu = np.diff(self.wall)[warmup:], np.diff(self.cpu)[warmup:]
        return [float(v) for v in wall], [float(v) for v in cpu]


def load_images(hw: tuple[int, int], count: int = 16) -> np.ndarray:
    """``count`` magnetic_tile training images as float ``[N, H, W, 3]`` in [0, 1] (random ones without datasets)."""
    folder = DATASETS / "magnetic_tile" / "train" / "good"
    if not folder.is_dir():
        return np.random.default_rng(0).random((count, *hw, 3), dtype=np.float32)
    from PIL import Image

    files = sorted(folder.iterdir())[:count]
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((hw[1], hw[0])), np.float32) / 255
                     for f in files])


def normalised(model, images: np.ndarray):
    import torch

    from edgead.models.training import input_norm

    mean, std = input_norm(model.backbone, torch.device("cpu"))
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    return (x - mean) / std


def efficientad_teacher(params: dict, hw: tuple[int, int], images: np.ndarray, steps: int) -> Callable:
    """The generic teacher's distillation (``edgead distil-teacher``: batches of generic crops)."""
    import torch

    from edgead.models.efficientad import teachers
    from edgead.models.efficientad.networks import PDN_BUILDERS, PdnSize
    from edgead.models.backbone import BACKBONES

    channels = sum(BACKBONES[params["teacher_source"]].channels[n] for n in teachers.TEACHER_LAYERS)
    pdn = PDN_BUILDERS[PdnSize(params["size"])](channels, float(params["width"]))
    torch.manual_seed(0)
    with StepClock(teachers) as clock:
        teachers.distil_generic(pdn, params["teacher_source"], steps, 0, progress=False)
    return clock


def efficientad_student(params: dict, hw: tuple[int, int], images: np.ndarray, steps: int) -> Callable:
    """The student and autoencoder's training, on a random-weight teacher saved under the preset's key."""
    from edgead.models import registry
    from edgead.models.efficientad import teachers, train

    model = registry.build("efficientad", hw, **params)
    key = teachers.teacher_key(model.size, model.width, model.teacher_source, model.teacher_steps, model.seed)
    with tempfile.TemporaryDirectory() as tmp, _env("EDGEAD_TEACHER_CACHE", tmp):
        teachers.save_teacher(tmp, key, model.teacher, {"source_sha256": None, "note": "random weights (timing)"})
        with StepClock(train) as clock:
            train.fit(model, [normalised(model, images)], progress=False, steps=steps)
    return clock


def draem_train(params: dict, hw: tuple[int, int], images: np.ndarray, steps: int) -> Callable:
    """DRAEM's loop: anomaly simulation, both networks forward and backward."""
    from edgead.models import registry
    from edgead.models.draem import train

    model = registry.build("draem", hw, **params)
    x = normalised(model, images)
    batch = int(params.get("batch_size", 8))
    batches = [x[i:i + batch] for i in range(0, len(x) - batch + 1, batch)]
    with StepClock(train) as clock:
        train.fit(model, batches, progress=False, steps=steps)
    return clock


@contextlib.contextmanager
def _env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@dataclass(frozen=True)
class Phase:
    """One loop of a model's training: its name, the model parameter that counts its steps, how to run it, and
    the images per step (read off the parameters)."""

    name: str
    steps_param: str
    run: Callable
    batch: Callable[[dict], int]


PHASES: dict[str, tuple[Phase, ...]] = {
    "efficientad": (
        Phase("teacher", "teacher_steps", efficientad_teacher, lambda p: 8),  # teachers.BATCH generic crops
        Phase("student", "steps", efficientad_student, lambda p: int(p["batch_size"])),
    ),
    "draem": (Phase("train", "steps", draem_train, lambda p: int(p.get("batch_size", 8))),),
}
"""Per model: its training's loops, in the order they run."""


def measure(model: str, preset: str, steps: int, warmup: int, threads: list[int], rounds: int,
            hw: tuple[int, int], phases: list[str] | None = None) -> list[dict]:
    """Per phase and thread count: the median and mean step's wall and CPU seconds over ``rounds`` alternating
    runs of ``steps`` steps, and the preset's schedule extrapolated from the median."""
    import torch

    from edgead.models.registry import model_params

    params = model_params(model, preset)
    images = load_images(hw)
    rows = []
    for phase in PHASES[model]:
        if phases and phase.name not in phases:
            continue
        samples: dict[int, tuple[list, list, list]] = {n: ([], [], []) for n in threads}
        for _ in range(rounds):
            for n in threads:
                torch.set_num_threads(n)
                load = os.getloadavg()[0]
                clock = phase.run(params, hw, images, steps + warmup + 1)
                wall, cpu = clock.steps(warmup)
                samples[n][0].extend(wall)
                samples[n][1].extend(cpu)
                samples[n][2].append(load)
        schedule = int(params[phase.steps_param])
        for n, (wall, cpu, loads) in samples.items():
            rows.append({"model": model, "preset": preset, "phase": phase.name, "threads": n,
                         "image_hw": f"{hw[0]}x{hw[1]}", "batch": phase.batch(params), "steps_timed": len(wall),
                         "wall_s_median": statistics.median(wall), "wall_s_mean": statistics.fmean(wall),
                         "cpu_s_median": statistics.median(cpu), "cpu_s_mean": statistics.fmean(cpu),
                         "load": [round(v, 1) for v in loads], "schedule_steps": schedule,
                         "schedule_wall_h": statistics.median(wall) * schedule / 3600,
                         "schedule_cpu_h": statistics.median(cpu) * schedule / 3600,
                         "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return rows


KEY = ("model", "preset", "phase", "threads", "image_hw")
"""A row of the results file is replaced by a new one with the same values of these fields."""


def merge(path: Path, rows: list[dict]) -> list[dict]:
    """The earlier rows of the results file at ``path`` not measured again, then ``rows``."""
    return merge_rows(path, rows, KEY)


def report(rows: list[dict]) -> str:
    lines = [f"Produced by `nice -n 10 (or 19) python benchmarks/step_cost.py --model MODEL --preset PRESET` on {machine()}: "
             "each phase of the preset's training run for a few dozen steps of its real code at the preset's "
             "parameters (the thread counts alternating in one process), the first steps dropped; step: end of one "
             "optimiser step to the end of the next. Schedule: the median step times the preset's steps, **an "
             "extrapolation, not a measured run**. Load: the 1-minute load average at the start of each run (the 2 "
             "cores are shared; the wall times are upper bounds).", "",
             "| model | preset | phase | image | batch | threads | steps timed | wall s / step (median) | CPU s / step "
             "(median) | load | schedule steps | schedule, wall h (extrapolated) | schedule, CPU h (extrapolated) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        hw = r["image_hw"] if r["phase"] != "teacher" else "128x128 generic crops"
        lines.append(f"| {r['model']} | {r['preset']} | {r['phase']} | {hw} | {r['batch']} | {r['threads']} | "
                     f"{r['steps_timed']} | {r['wall_s_median']:.2f} | {r['cpu_s_median']:.2f} | "
                     f"{', '.join(f'{v:.1f}' for v in r['load'])} | {r['schedule_steps']} | "
                     f"{r['schedule_wall_h']:.1f} | {r['schedule_cpu_h']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, choices=list(PHASES))
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--phases", nargs="+", default=None, help="only these phases (default: all of the model's)")
    ap.add_argument("--steps", type=int, default=30, help="steps timed per run (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=3, help="steps dropped at the start of each run")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts, alternated")
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the thread counts")
    ap.add_argument("--image-size", default="256x256", help="HxW of the training images")
    ap.add_argument("--docs", action="store_true", help="merge into the results file and the docs section")
    args = ap.parse_args()
    hw = tuple(int(v) for v in args.image_size.lower().split("x"))
    rows = measure(args.model, args.preset, args.steps, args.warmup, args.threads, args.rounds, hw, args.phases)
    print(report(rows), flush=True)
    print(json.dumps(rows), flush=True)  # the raw rows, in the log too
    if args.docs:
        merged = merge(RESULTS, rows)
        save_json(RESULTS, {"machine": machine(), "rows": merged})
        update_section("step-cost", report(merged))


if __name__ == "__main__":
    main()
