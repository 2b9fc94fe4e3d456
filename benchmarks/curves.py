"""Learning curves: each trained model on one category at growing budgets, image and pixel AUROC against training time.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/curves.py --cache /work/cache/curves
        [--models efficientad draem ...] [--presets quick cpu] [--category magnetic_tile] [--max-train 100]
        [--levels N | --budgets N ...] [--docs]
    python benchmarks/curves.py --cache /work/cache/curves --report     # docs from the cache, no training

A point is one training run of ``edgead train`` (the pipeline: fit, calibrate, export) of a model at a preset with
its budget parameter (steps or epochs) set to a rung of :data:`LADDERS`, evaluated on the category's fixed test
split with ONNX Runtime (``evaluate_bundle``). Points run breadth first (every model's first rung, then every
model's second...), so that a run cut short still has a curve of every model. Every finished point is written to
``CACHE/points.json`` at once, and a re-run skips it: the benchmark resumes from its cache, point by point. A point
cut short (no ``edgead.yaml`` in its bundle folder) is trained again from its first step: a training run keeps no
checkpoint. Bundles stay in ``CACHE/bundles``. Each preset's own budget runs first; ``--levels 0`` runs only those. One torch thread
(``OMP_NUM_THREADS=1``) trains faster than the default threads on a machine that other jobs load (docs/benchmarks.md).
Several runs may share a cache (e.g. one per model): a point being trained holds
``CACHE/locks/<point>``, the others skip it, and each run merges its points into the file it re-reads.

Training time is measured twice: wall seconds, and the CPU seconds of the process (user + system, all threads).
On a shared machine the wall time depends on the load; the CPU time much less, and on an idle 2-core machine
with 2 threads it is about twice the wall time. The curves are plotted against CPU seconds.

``--docs`` (or ``--report``) writes ``benchmarks/results/curves.json``, the plot ``docs/images/curves.svg`` and
the ``curves`` section of docs/benchmarks.md, with each curve's trend: AUROC gained per doubling of the budget
(least squares over its last three points, linear in log2 of the CPU time) and, where it rises, the CPU time at
which that trend would reach PaDiM's image AUROC on the same split (an extrapolation, stated as such).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, categories, machine, save_json, subset_category, update_section  # noqa: E402

LADDERS: dict[str, tuple[str, tuple[int, ...]]] = {
    "ae-knn": ("epochs", (30, 60, 120, 240)),
    "piade": ("epochs", (10, 20, 40, 80)),
    "efficientad": ("steps", (200, 500, 1000, 2000, 4000)),
    "vt-adl": ("epochs", (20, 40, 80, 160)),
    "draem": ("steps", (200, 400, 800, 1600)),
}
"""Per model: the budget parameter and its rungs (the first is the ``quick`` preset's value)."""

REFERENCE = {"magnetic_tile": {100: ("padim", 85.9, 74.7), None: ("padim", 95.3, 77.2)}}
"""PaDiM on the same split (docs/benchmarks.md, models and accuracy sections): image, pixel AUROC in percent."""

RESULTS = ROOT / "benchmarks" / "results" / "curves.json"
SVG = ROOT / "docs" / "images" / "curves.svg"
COLOURS = {"efficientad": "#1f77b4", "draem": "#d62728", "vt-adl": "#2ca02c", "piade": "#9467bd",
           "ae-knn": "#ff7f0e"}


def point_key(model: str, preset: str, budget: int, variant: str = "") -> str:
    return f"{model}|{preset}{variant}|{budget}"


def variant_text(orientation: str = "keep", params: dict | None = None) -> str:
    """The suffix that tells a variant's points from the preset's own: ``"+portrait"``, ``"+brightness-mean"``
    (``""``: the preset as it is)."""
    parts = ([orientation] if orientation != "keep" else []) + [f"{k}-{v}" for k, v in sorted((params or {}).items())]
    return "".join(f"+{p}" for p in parts)


def bundle_dir(cache: Path, point: dict) -> Path:
    """Where a point's bundle lives in the cache."""
    return (cache / "bundles" / f"{point['model']}-{point['preset']}{point.get('variant', '')}-"
            f"{point['param']}{point['budget']}")


def load_points(cache: Path) -> dict[str, dict]:
    path = cache / "points.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def save_point(cache: Path, key: str, point: dict) -> dict[str, dict]:
    """Merge one point into ``CACHE/points.json`` (re-read first: other runs may have added theirs)."""
    points = {**load_points(cache), key: point}
    tmp = cache / f"points.json.{os.getpid()}"
    save_json(tmp, points)
    tmp.replace(cache / "points.json")
    return points


def claim(cache: Path, key: str) -> Path | None:
    """The lock file of a point, or None when another run holds it (a lock of a dead process is taken over)."""
    locks = cache / "locks"
    locks.mkdir(exist_ok=True)
    path = locks / key.replace("|", "-")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or 0), 0)
            return None
        except (ProcessLookupError, ValueError):
            path.unlink(missing_ok=True)
            return claim(cache, key)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def run_point(model: str, preset: str, budget: int, data: Path, cache: Path, orientation: str = "keep",
              params: dict | None = None) -> dict:
    """Train one bundle (or reuse the cached one) and evaluate it; ``orientation`` and ``params`` make a variant
    of the preset (the training layout's orientation, model parameters)."""
    from edgead.bundle import load_bundle
    from edgead.evaluation import evaluate_bundle
    from edgead.train.pipeline import TrainConfig, train

    param = LADDERS[model][0]
    variant = variant_text(orientation, params)
    out = bundle_dir(cache, {"model": model, "preset": preset, "variant": variant, "param": param, "budget": budget})
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), cpu_seconds()
    if (out / "edgead.yaml").is_file():
        bundle, wall, cpu = load_bundle(out), None, None
    else:
        layout = {"orientation": orientation} if orientation != "keep" else None
        cfg = TrainConfig(model=model, preset=preset, params={**(params or {}), param: budget}, evaluate=False,
                          layout=layout)
        bundle = train(data, out, cfg, progress=False).bundle
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    metrics = evaluate_bundle(bundle.root, data).metrics
    training = bundle.meta.training
    return {"model": model, "preset": preset, **({"variant": variant} if variant else {}), "param": param,
            "budget": budget,
            "train_wall_s": wall if wall is not None else training.seconds, "train_cpu_s": cpu,
            "n_train": training.n_images + (training.n_validation or 0),
            "input_hw": [bundle.input_spec.height, bundle.input_spec.width],
            "image_auroc": metrics.get("image_auroc"), "pixel_auroc": metrics.get("pixel_auroc"),
            "aupro": metrics.get("aupro"), "load_start": load0, "load_end": os.getloadavg()[0],
            "threads": torch_threads(),
            "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def preset_budget(model: str, preset: str) -> int:
    """The budget (steps or epochs) that the preset itself trains with."""
    from edgead.models.registry import model_params

    return int(model_params(model, preset)[LADDERS[model][0]])


def schedule(models: list[str], presets: list[str], levels: int,
             budgets: list[int] | None = None) -> list[tuple[str, str, int]]:
    """Each (preset, model)'s own budget first (the point a user of that preset gets), models in the given order;
    then breadth first: rung 0 of every (preset, model), then rung 1... ``budgets``: only these, in this order."""
    if budgets:
        return [(model, preset, b) for b in budgets for preset in presets for model in models]
    out = [(model, preset, preset_budget(model, preset)) for preset in presets for model in models]
    for level in range(levels):
        for preset in presets:
            for model in models:
                rungs = LADDERS[model][1]
                if level < len(rungs) and (model, preset, rungs[level]) not in out:
                    out.append((model, preset, rungs[level]))
    return out


def same_training(model: str, preset: str, budget: int, points: dict[str, dict]) -> dict | None:
    """A cached point of another preset whose training is this one's (the same model parameters once the budget
    is set, e.g. a ``cpu`` preset that only raises the ``quick`` preset's epochs), or None."""
    from edgead.models.registry import model_params

    param = LADDERS[model][0]
    params = model_params(model, preset, **{param: budget})
    for p in points.values():
        if (p["model"] == model and p["preset"] != preset and p["budget"] == budget and "same_as" not in p
                and not p.get("variant")
                and model_params(model, p["preset"], **{param: budget}) == params):
            return p
    return None


# -- report -----------------------------------------------------------------------------------------------------
FAR = 1000
"""A trend whose reach lies beyond this many times the largest measured budget is reported as out of reach."""


def trend(points: list[dict], target: float | None) -> dict | None:
    """AUROC gained per doubling of the budget over the last (up to) three points, by budget, and the budget at
    which that line reaches ``target``, with its CPU time scaled from the largest point's CPU seconds per budget
    unit; None with fewer than two points.

    The fit is on the budget, not on the measured CPU time: under a shared machine's load the CPU time of one run
    is not monotone in its budget (threads that spin while waiting for a core count as CPU time).
    """
    pts = sorted((p for p in points if p.get("image_auroc") is not None), key=lambda p: p["budget"])[-3:]
    if len(pts) < 2:
        return None
    x = np.log2([p["budget"] for p in pts])
    y = np.array([100 * p["image_auroc"] for p in pts])
    slope, intercept = np.polyfit(x, y, 1)
    reach = reach_cpu = None
    if target is not None and slope > 0.1 and y[-1] < target:
        reach = float(2 ** ((target - intercept) / slope))
        if reach > FAR * pts[-1]["budget"]:
            reach = math.inf
        elif pts[-1].get("train_cpu_s"):
            reach_cpu = reach * pts[-1]["train_cpu_s"] / pts[-1]["budget"]
    return {"per_doubling_pt": float(slope), "reach_budget": reach, "reach_cpu_s": reach_cpu}


def reach_text(t: dict, param: str, best: float | None, ref: tuple | None) -> str:
    """The trend's reach of the reference as a table cell."""
    if t["reach_budget"] is None:
        return "reached" if best is not None and ref and 100 * best >= ref[1] else "not rising"
    if math.isinf(t["reach_budget"]):
        return f"out of reach (over {FAR}x the largest budget)"
    text = _fmt_s(t["reach_cpu_s"])
    cpu = "" if not t["reach_cpu_s"] else (f", about {text[:-2]} CPU h" if text.endswith(" h") else
                                            f", about {text} CPU s")
    return f"{param}={t['reach_budget']:.0f}{cpu}"


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f}" if s < 36000 else f"{s / 3600:.0f} h"


def svg_plot(groups: dict[tuple[str, str], list[dict]], ref: tuple | None) -> str:
    """Two panels (image, pixel AUROC) against CPU seconds on a log axis; one polyline per (model, preset)."""
    width, height, pad = 900, 380, 55
    panel_w = (width - 3 * pad) / 2
    xs = [p["train_cpu_s"] for pts in groups.values() for p in pts if p.get("train_cpu_s")]
    lo = math.log10(min(xs)) - 0.1 if xs else 1.0
    hi = math.log10(max(xs)) + 0.1 if xs else 4.0
    y_lo, y_hi = 40.0, 100.0
    per_row = 4
    legend_h = 14 * math.ceil(len(groups) / per_row)  # below the panels, one line per row of curves
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + legend_h}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height + legend_h}" fill="white"/>']
    for i, (metric, title) in enumerate((("image_auroc", "image AUROC %"), ("pixel_auroc", "pixel AUROC %"))):
        x0 = pad + i * (panel_w + pad)

        def px(v: float) -> float:
            return x0 + (math.log10(v) - lo) / (hi - lo) * panel_w

        def py(v: float) -> float:
            return pad + (y_hi - v) / (y_hi - y_lo) * (height - 2 * pad)

        out.append(f'<rect x="{x0}" y="{pad}" width="{panel_w}" height="{height - 2 * pad}" fill="none" '
                   'stroke="#888"/>')
        out.append(f'<text x="{x0 + panel_w / 2}" y="{pad - 12}" text-anchor="middle">{title} vs training CPU '
                   's (log)</text>')
        for v in range(int(y_lo), int(y_hi) + 1, 10):
            out.append(f'<text x="{x0 - 6}" y="{py(v) + 4}" text-anchor="end">{v}</text>')
            out.append(f'<line x1="{x0}" x2="{x0 + panel_w}" y1="{py(v)}" y2="{py(v)}" stroke="#eee"/>')
        for e in range(math.ceil(lo), math.floor(hi) + 1):
            out.append(f'<text x="{px(10 ** e)}" y="{height - pad + 14}" text-anchor="middle">1e{e}</text>')
        out.append(f'<line x1="{x0}" x2="{x0 + panel_w}" y1="{py(50)}" y2="{py(50)}" stroke="#bbb" '
                   'stroke-dasharray="2,3"/>')
        if ref is not None:
            v = ref[1] if metric == "image_auroc" else ref[2]
            out.append(f'<line x1="{x0}" x2="{x0 + panel_w}" y1="{py(v)}" y2="{py(v)}" stroke="black" '
                       f'stroke-dasharray="6,4"/><text x="{x0 + 4}" y="{py(v) - 4}">{ref[0]} {v}</text>')
        for (model, preset), pts in groups.items():
            pts = [p for p in pts if p.get("train_cpu_s") and p.get(metric) is not None]
            if not pts:
                continue
            colour = COLOURS.get(model, "#444")
            dash = "" if preset == "quick" else ' stroke-dasharray="5,2"'
            coords = " ".join(f"{px(p['train_cpu_s']):.1f},{py(100 * p[metric]):.1f}" for p in pts)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            out += [f'<circle cx="{px(p["train_cpu_s"]):.1f}" cy="{py(100 * p[metric]):.1f}" r="3" '
                    f'fill="{colour}"/>' for p in pts]
    for j, (model, preset) in enumerate(groups):
        out.append(f'<text x="{pad + 210 * (j % per_row)}" y="{height - 8 + 14 * (j // per_row)}" '
                   f'fill="{COLOURS.get(model, "#444")}">{model} ({preset})</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def curve_groups(points: dict[str, dict]) -> dict[tuple[str, str], list[dict]]:
    """The points per (model, preset and variant), by budget."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for p in sorted(points.values(), key=lambda p: (p["model"], p["preset"] + p.get("variant", ""), p["budget"])):
        groups.setdefault((p["model"], p["preset"] + p.get("variant", "")), []).append(p)
    return groups


def report_rows(points: dict[str, dict]) -> str:
    """The table of measured points (a point reused from another preset's equal training says so)."""
    lines = ["| model | preset | budget | CPU s | wall s | load | threads | image AUROC | pixel AUROC | AUPRO |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (model, preset), pts in curve_groups(points).items():
        for p in pts:
            same = f" (the {p['same_as'].split('|')[1]} point: same parameters)" if p.get("same_as") else ""
            lines.append(f"| {model} | {preset} | {p['param']}={p['budget']}{same} | {_fmt_s(p.get('train_cpu_s'))} "
                         f"| {_fmt_s(p.get('train_wall_s'))} | {p.get('load_start', 0):.1f} | {p.get('threads', 2)} | "
                         f"{_pct(p.get('image_auroc'))} | {_pct(p.get('pixel_auroc'))} | {_pct(p.get('aupro'))} |")
    return "\n".join(lines)


def report(points: dict[str, dict], category: str, max_train: int | None) -> str:
    ref = REFERENCE.get(category, {}).get(max_train)
    groups = curve_groups(points)
    SVG.parent.mkdir(parents=True, exist_ok=True)
    SVG.write_text(svg_plot(groups, ref))
    train = f"{max_train} train images" if max_train else "all train images"
    lines = [f"Produced by `nice -n 19 python benchmarks/curves.py` on {machine()}: {category} ({train}, the "
             "fixed test split), every point one `edgead train` run at the preset with its budget set, evaluated "
             "with ONNX Runtime FP32. CPU s: the training process's CPU time (user + system, all its torch "
             "threads; about twice the wall time on an idle 2-core machine with 2 threads, and inflated by threads "
             "that spin while they wait for a core on a loaded one); wall s was taken while the 2 cores were "
             "shared with other jobs at nice 19 (load: the 1-minute load average at the start of the point; both "
             "times are upper bounds). Plot: "
             "[docs/images/curves.svg](images/curves.svg)."
             + (f" Reference: {ref[0]} on the same split, {ref[1]} image / {ref[2]} pixel AUROC." if ref else ""),
             "", report_rows(points)]
    lines += ["", "Trend over each curve's last three points by budget, or two where only two were measured (least "
              "squares, AUROC linear in log2 of the budget; the CPU time scaled from the largest point's; an "
              "extrapolation, not a measurement):", "",
              "| model | preset | points | best image AUROC | image AUROC per doubling of the budget (pt) | budget "
              f"to reach {ref[0] if ref else 'the reference'} (extrapolated) |", "|---|---|---|---|---|---|"]
    for (model, preset), pts in groups.items():
        t = trend(pts, ref[1] if ref else None)
        best = max((p["image_auroc"] for p in pts if p.get("image_auroc") is not None), default=None)
        if t is None:
            lines.append(f"| {model} | {preset} | {len(pts)} | {_pct(best)} | fewer than 2 points | - |")
        else:
            lines.append(f"| {model} | {preset} | {len(pts)} | {_pct(best)} | {t['per_doubling_pt']:+.1f} | "
                         f"{reach_text(t, pts[0]['param'], best, ref)} |")
    return "\n".join(lines) + "\n"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="points.json and bundles (keep it outside the repository)")
    ap.add_argument("--models", nargs="+", default=list(LADDERS), choices=list(LADDERS))
    ap.add_argument("--presets", nargs="+", default=["quick"], help="presets whose architecture the curve trains")
    ap.add_argument("--category", default="magnetic_tile")
    ap.add_argument("--max-train", type=int, default=100, help="seeded subset of N training images (0: all)")
    ap.add_argument("--levels", type=int, default=max(len(r) for _, r in LADDERS.values()),
                    help="rungs of each ladder to run")
    ap.add_argument("--budgets", type=int, nargs="+", default=None,
                    help="only these budgets (steps or epochs), in this order, instead of the preset's and the ladder's")
    ap.add_argument("--orientation", default="keep", choices=["keep", "landscape", "portrait"],
                    help="a variant: train (and evaluate) with every image turned to this orientation first")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a variant: a model parameter over the preset's (e.g. brightness=mean)")
    ap.add_argument("--docs", action="store_true", help="write results, plot and docs after every point")
    ap.add_argument("--report", action="store_true", help="only write results, plot and docs from the cache")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    points = load_points(cache)
    max_train = args.max_train or None
    from edgead.cli.model_cmds import _overrides

    params = _overrides(args.set)
    variant = variant_text(args.orientation, params)

    def write_docs() -> None:
        chosen = {k: p for k, p in load_points(cache).items() if p["model"] in args.models}
        save_json(RESULTS, {"machine": machine(), "category": args.category, "max_train": max_train,
                            "points": list(chosen.values())})
        update_section("curves", report(chosen, args.category, max_train))

    if args.report:
        write_docs()
        return
    (cat,) = categories([args.category])
    data = subset_category(cat, max_train, cache)
    for model, preset, budget in schedule(args.models, args.presets, args.levels, args.budgets):
        key = point_key(model, preset, budget, variant)
        known = load_points(cache)
        if key in known:
            continue
        twin = None if variant else same_training(model, preset, budget, known)
        if twin is not None:
            save_point(cache, key, {**twin, "preset": preset, "same_as": point_key(model, twin["preset"], budget)})
            print(f"{key}: the training of {point_key(model, twin['preset'], budget)} (same parameters)", flush=True)
            continue
        lock = claim(cache, key)
        if lock is None:
            continue
        t0 = time.perf_counter()
        try:
            points = save_point(cache, key, run_point(model, preset, budget, data, cache, args.orientation, params))
        finally:
            lock.unlink(missing_ok=True)
        p = points[key]
        print(f"{key}: image {_pct(p['image_auroc'])} pixel {_pct(p['pixel_auroc'])}, train CPU "
              f"{_fmt_s(p['train_cpu_s'])} s, point in {time.perf_counter() - t0:.0f} s", flush=True)
        if args.docs:
            write_docs()


if __name__ == "__main__":
    main()
