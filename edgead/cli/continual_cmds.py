"""``edgead update`` (extend a bundle with a new task) and the task matrix of ``edgead eval --tasks``."""
from __future__ import annotations

import argparse

from edgead.cli.output import fmt, print_json
from edgead.cli.trust_cmds import add_sign_key, signing_key
from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    from edgead.continual.strategies import ALLOWED, Strategy

    defaults = ", ".join(f"{m}: {s[0].value}" for m, s in ALLOWED.items())
    p = sub.add_parser("update", help="extend a bundle with a new task (variant) without forgetting the old ones")
    p.add_argument("--bundle", required=True, help="the bundle to extend")
    p.add_argument("--data", required=True, help="the new task, MVTec layout (train/good required)")
    p.add_argument("--out", required=True, help="bundle directory to write (refused if it exists, unless --force)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.add_argument("--strategy", default=None, choices=[s.value for s in Strategy],
                   help=f"how to learn the task (default per model: {defaults})")
    p.add_argument("--replay", type=int, default=None, metavar="N",
                   help="replay images kept over all tasks (default 32 for replay, else the bundle's)")
    p.add_argument("--name", default=None, help="task name (default: the data folder's name)")
    p.add_argument("--max-bank", type=int, default=None, help="PatchCore: cap on the memory bank rows")
    p.add_argument("--replay-fraction", type=float, default=0.5, help="share of each batch from the replay buffer")
    p.add_argument("--target-frr", type=float, default=None, help="target false-reject rate (default: the bundle's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]",
                   help="where to train (auto: CUDA when torch sees a GPU, else the CPU)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fit option of the model, e.g. epochs=10 or steps=100")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_sign_key(p)
    p.set_defaults(handler=cmd_update)


def cmd_update(args) -> int:
    from edgead.cli.model_cmds import _overrides
    from edgead.continual.context import UpdateOptions
    from edgead.continual.update import update_bundle_with_task

    options = UpdateOptions(max_bank=args.max_bank, replay_fraction=args.replay_fraction,
                            fit_options=_overrides(args.set), batch_size=args.batch_size, seed=args.seed,
                            progress=not (args.quiet or args.json), device=args.device)
    result = update_bundle_with_task(args.bundle, args.data, args.out, strategy=args.strategy, replay=args.replay,
                                     name=args.name, target_frr=args.target_frr, options=options, force=args.force,
                                     sign_key=signing_key(args))
    meta = result.bundle.meta
    if args.json:
        print_json({"bundle": str(result.bundle.root), "model_hash": result.bundle.model_hash,
                    "strategy": result.strategy.value, "tasks": [t.to_dict() for t in meta.tasks],
                    "replay": result.replay,
                    "info": result.info, "threshold": meta.calibration.image.thr, "seconds": result.seconds})
        return ExitStatus.OK
    names = ", ".join(t.name for t in meta.tasks)
    print(f"bundle {result.bundle.root} ({result.bundle.model_hash[:12]}): task {result.task.name!r} added by "
          f"{result.strategy.value} in {result.seconds:.1f} s; tasks: {names}")
    print(f"  threshold {meta.calibration.image.thr:.5g} recalibrated on {meta.training.n_validation} "
          f"validation images; replay {result.replay['replay_images']} images ({result.replay['replay_bytes']} B), "
          f"validation {result.replay['validation_images']} images ({result.replay['validation_bytes']} B)")
    return ExitStatus.OK


def cmd_eval_tasks(args) -> int:
    """``edgead eval --tasks --bundle B1 --bundle B2 ... --data T1 --data T2 ... [--single S1 ...]``."""
    from edgead.continual.matrix import METRICS, evaluate_tasks

    result = evaluate_tasks(args.bundle, args.data, single=args.single or None, backend=args.backend,
                            progress=not args.json)
    report = result.to_dict()
    if args.json:
        print_json(report)
        return ExitStatus.OK
    width = max(len(t) for t in result.tasks) + 2
    for metric in METRICS:
        print(f"{metric} (row i: after learning task i; column j: tested on task j)")
        print(" " * width + "".join(f"{t:>{width}}" for t in result.tasks))
        for name, row in zip(result.tasks, report[metric]["matrix"]):
            print(f"{name:<{width}}" + "".join(f"{fmt(v):>{width}}" for v in row))
        r = report[metric]
        print(f"  average {fmt(r['average'])}  forgetting {fmt(r['forgetting'])}  "
              f"gap to one model per task {fmt(r['gap_to_single'])}")
    return ExitStatus.OK
