"""``edgead models``: the model table (names, what each is, parameters and their defaults)."""
from __future__ import annotations

import argparse
import sys

from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models with their parameters and defaults (for train --set)")
    p.add_argument("names", nargs="*", metavar="MODEL", help="only these models")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(handler=cmd_models)


def cmd_models(args) -> int:
    from edgead.models.catalog import render_json, render_text

    sys.stdout.write(render_json(args.names) if args.json else render_text(args.names))
    return ExitStatus.OK
