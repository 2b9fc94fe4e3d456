"""Small output helpers shared by the subcommands."""
from __future__ import annotations

import json
import sys


def print_json(obj) -> None:
    """One JSON object on stdout (numbers as plain floats)."""
    json.dump(obj, sys.stdout, default=float, sort_keys=False)
    sys.stdout.write("\n")


def fmt(v) -> str:
    """A metric for a table: 4 decimals, or '-' for None."""
    if v is None:
        return "-"
    return f"{v:.4f}" if isinstance(v, float) else str(v)
