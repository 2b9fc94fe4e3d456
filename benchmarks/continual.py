"""Continual learning on the twelve piped_* categories as a task sequence: writes the ``continual`` section of
docs/benchmarks.md.

Usage:
    python benchmarks/continual.py [--models patchcore padim draem] [--strategies fresh naive replay ...]
                                   [--categories piped_pa_bdp01_tl ...] [--image-size N] [--replay N]
                                   [--set KEY=VALUE ...] [--no-docs]

The sorted piped_* categories are the tasks, learnt one after the other. Per model and strategy:

* ``fresh``: one model per task (``edgead train`` on that task alone), the reference;
* ``bank-extension`` (PatchCore), ``per-task`` and ``running`` (PaDiM), ``replay`` and ``naive`` (DRAEM, chosen as
  the trained model: it trains in minutes and forgets clearly when fine-tuned naively): ``edgead train`` on the
  first task, then ``edgead update`` with each next task.

After each task the bundle is evaluated on every task seen so far (ONNX Runtime on the CPU, ``evaluate_bundle``):
the task matrix of image AUROC and pixel F1, the final values, the average forgetting, the gap to one model per task,
and the memory used (bundle bytes, replay buffer bytes). Results: benchmarks/results/continual.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, categories, machine, merge_rows, model_overrides, save_json, update_section  # noqa: E402

from edgead.config.loader import parse_set  # noqa: E402

from edgead.continual.context import UpdateOptions  # noqa: E402
from edgead.continual.matrix import TaskMatrix, evaluate_tasks  # noqa: E402
from edgead.continual.strategies import ALLOWED, Strategy  # noqa: E402
from edgead.continual.update import update_bundle_with_task  # noqa: E402
from edgead.train.pipeline import TrainConfig, train  # noqa: E402
from edgead.train.sizing import parse_image_size  # noqa: E402

PIPED = "piped_"
DEFAULT_STRATEGIES = [s.value for s in Strategy]
LARGE_TRAIN = 200  # as benchmarks/accuracy.py: PatchCore keeps a 1 % coreset above this many images


RESULTS = ROOT / "benchmarks" / "results" / "continual.json"
OVERRIDES: dict = {}  # --set KEY=VALUE, applied to the models that have that parameter


def _params(model: str, task: Path) -> dict:
    n_train = sum(1 for _ in (task / "train" / "good").iterdir())
    params = {"coreset_ratio": 0.01} if model == "patchcore" and n_train > LARGE_TRAIN else {}
    return {**params, **model_overrides(model, OVERRIDES)}


def _bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def fresh_bundles(model: str, tasks: list[Path], work: Path, image_size) -> list[Path]:
    """One bundle per task, each trained on that task alone."""
    out = []
    for i, task in enumerate(tasks):
        cfg = TrainConfig(model=model, image_size=image_size, evaluate=False, params=_params(model, task))
        out.append(train(task, work / f"{model}-fresh-{i:02d}", cfg, progress=False).bundle.root)
    return out


def sequence(model: str, strategy: Strategy, tasks: list[Path], first: Path, work: Path, replay: int | None
             ) -> tuple[list[Path], list[dict]]:
    """The bundles after each task: the first task's fresh bundle, then one update per task."""
    bundles, steps = [first], []
    for i, task in enumerate(tasks[1:], start=1):
        t0 = time.perf_counter()
        result = update_bundle_with_task(bundles[-1], task, work / f"{model}-{strategy.value}-{i:02d}",
                                         strategy=strategy, replay=replay, options=UpdateOptions())
        bundles.append(result.bundle.root)
        steps.append({"task": task.name, "seconds": round(time.perf_counter() - t0, 1), **result.info})
    return bundles, steps


def run(models: list[str], strategies: list[str], tasks: list[Path], image_size, replay: int | None) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgead-continual-") as tmp:
        work = Path(tmp)
        for model in models:
            singles = fresh_bundles(model, tasks, work, image_size)
            for name in strategies:
                strategy = Strategy(name)
                if strategy not in ALLOWED[model]:
                    continue
                if strategy is Strategy.FRESH:
                    bundles, steps = singles, []
                    matrix = evaluate_tasks(singles, tasks, single=singles)
                    # one model per task: the diagonal is the final value of each task, no forgetting by definition
                    final = {m: [matrix.matrices[m][j, j] for j in range(len(tasks))] for m in matrix.matrices}
                else:
                    bundles, steps = sequence(model, strategy, tasks, singles[0], work, replay)
                    matrix = evaluate_tasks(bundles, tasks, single=singles)
                    final = {m: list(matrix.final(m)) for m in matrix.matrices}
                rows.append({**_row(model, strategy, matrix, final, bundles, steps), "n_tasks": len(tasks),
                             "image_size": image_size, "params": _params(model, tasks[0])})
                print(_line(rows[-1]), flush=True)
    return rows


def _row(model: str, strategy: Strategy, matrix: TaskMatrix, final: dict, bundles: list[Path], steps) -> dict:
    from edgead.bundle import load_bundle

    report = matrix.to_dict()
    last = load_bundle(bundles[-1]).meta
    fresh = strategy is Strategy.FRESH
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {"model": model, "strategy": strategy.value, "tasks": report["tasks"], "matrix": report, "steps": steps,
            "final_image_auroc": mean(final["image_auroc"]), "final_pixel_f1": mean(final["pixel_f1"]),
            "forgetting_image_auroc": 0.0 if fresh else report["image_auroc"]["forgetting"],
            "forgetting_pixel_f1": 0.0 if fresh else report["pixel_f1"]["forgetting"],
            "bundle_bytes": sum(_bytes(b) for b in bundles) if fresh else _bytes(bundles[-1]),
            "replay_bytes": 0 if fresh else int(last.get("replay", {}).get("replay_bytes", 0)),
            "validation_bytes": 0 if fresh else int(last.get("replay", {}).get("validation_bytes", 0))}


def _line(r: dict) -> str:
    return (f"{r['model']} {r['strategy']}: final image AUROC {r['final_image_auroc']:.4f} pixel F1 "
            f"{r['final_pixel_f1']:.4f} forgetting {r['forgetting_image_auroc']} bundle {r['bundle_bytes']} B "
            f"replay {r['replay_bytes']} B")


def table(rows: list[dict]) -> str:
    out = ["| model | strategy | tasks | image AUROC after last task | pixel F1 after last task | forgetting (AUROC) | "
           "forgetting (pixel F1) | bundle MB | replay MB | validation MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    mb = lambda v: f"{v / 1e6:.1f}"  # noqa: E731
    for r in rows:
        note = " (" + ", ".join(f"{k}={v}" for k, v in r.get("params", {}).items()) + ")" if r.get("params") else ""
        out.append(f"| {r['model']}{note} | {r['strategy']} | {r.get('n_tasks', len(r['tasks']))} | "
                   f"{pct(r['final_image_auroc'])} | {pct(r['final_pixel_f1'])} | "
                   f"{pct(r['forgetting_image_auroc'])} | {pct(r['forgetting_pixel_f1'])} | {mb(r['bundle_bytes'])} | "
                   f"{mb(r['replay_bytes'])} | {mb(r['validation_bytes'])} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["patchcore", "padim", "draem"])
    ap.add_argument("--strategies", nargs="+", default=DEFAULT_STRATEGIES, choices=DEFAULT_STRATEGIES)
    ap.add_argument("--categories", nargs="*", default=None, help="a subset of the piped_* categories")
    ap.add_argument("--image-size", default=None)
    ap.add_argument("--replay", type=int, default=None, help="replay budget over all tasks (default 32)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="model parameter for the models that have it, e.g. steps=50 (stated in the docs)")
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    args = ap.parse_args()
    OVERRIDES.update(parse_set(args.set))
    tasks = [p for p in categories(args.categories) if p.name.startswith(PIPED)]
    if not tasks:
        raise SystemExit("no piped_* category selected")
    rows = run(args.models, args.strategies, tasks, parse_image_size(args.image_size), args.replay)
    if args.no_docs:
        return
    rows = merge_rows(RESULTS, rows, ("model", "strategy"))
    save_json(RESULTS, {"machine": machine(), "rows": rows})
    body = (f"Produced by `python benchmarks/continual.py` on {machine()}: the first `tasks` piped_* categories "
            f"(sorted) learnt one after the other; ONNX Runtime FP32 on the CPU; metrics in percent, averaged over "
            "the tasks after the last one. `fresh` is one model per task (its bundle size is the sum of all); "
            "forgetting is the mean drop of each old task from its best value (docs/continual.md). DRAEM is the "
            "trained model (replay budget 32 images over all tasks, half of each batch). Image size: "
            f"{args.image_size or 'default'}; parameters other than the defaults are named beside the model.\n\n")
    update_section("continual", body + table(rows))



if __name__ == "__main__":
    main()
