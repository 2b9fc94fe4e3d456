"""``edgead distil-teacher``: distil EfficientAD's generic teacher ahead of training (e.g. on a GPU host)."""
from __future__ import annotations

import argparse

from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distil-teacher", help="distil EfficientAD's teacher on the generic image set (the stand-in "
                                              "for ImageNet) and store it where training finds it")
    p.add_argument("--size", default="S", choices=["S", "M"], help="PDN size (the model's size parameter)")
    p.add_argument("--width", type=float, default=0.25, help="PDN width factor (the model's width parameter)")
    p.add_argument("--source", default="efficientnet_lite0", help="pretrained backbone distilled from")
    p.add_argument("--steps", type=int, default=3000, help="Adam steps (the model's teacher_steps parameter)")
    p.add_argument("--seed", type=int, default=0, help="seed (the model's seed parameter)")
    p.add_argument("--images", action="append", default=[], metavar="DIR",
                   help="a folder of extra generic images (e.g. another category's train/good), repeated")
    p.add_argument("--out", default=None, help="folder to write to (default: the user cache, "
                                               "$EDGEAD_TEACHER_CACHE or ~/.cache/edgead/teachers)")
    p.add_argument("--float16", action="store_true", help="store the weights as float16 (half the size)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_distil_teacher)


def cmd_distil_teacher(args) -> int:
    from edgead.models.efficientad.teachers import make_teacher

    path = make_teacher(size=args.size, width=args.width, source=args.source, steps=args.steps, seed=args.seed,
                        out=args.out, dirs=tuple(args.images), float16=args.float16, progress=not args.quiet)
    print(f"teacher {path} ({path.stat().st_size / 1024:.0f} KiB), provenance {path.with_suffix('.json')}")
    return ExitStatus.OK
