"""``edgead demo``: synthetic station -> train -> INT8 with the gate -> daemon with a virtual PLC -> summary."""
from __future__ import annotations

import argparse
from pathlib import Path

from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole product on a synthetic station (a few minutes on 2 cores)")
    p.add_argument("--out", default="demo-out", help="working folder (replaced)")
    p.add_argument("--parts", type=int, default=200, help="parts the station inspects")
    p.add_argument("--n-train", type=int, default=60, help="good parts to train on")
    p.add_argument("--model", default="patchcore")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"],
                   help="x86-cpu conversion (auto: the fastest candidate within the accuracy gate)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars or lines (the steps and summary stay)")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args) -> int:
    from edgead.demo import DemoOptions, run_demo
    from edgead.demo.run import check_summary

    summary = run_demo(DemoOptions(out=Path(args.out), parts=args.parts, n_train=args.n_train, model=args.model,
                                   precision=args.precision, seed=args.seed, progress=not args.quiet))
    check_summary(summary)
    return ExitStatus.OK
