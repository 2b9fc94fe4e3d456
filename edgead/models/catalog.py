"""The model table for people: ``edgead models`` and docs/models/README.md, rendered from :data:`MODELS`.

Reading the table imports no torch (the registry resolves its classes lazily).

Example:
    >>> print(render_text(["padim"]))                                    # doctest: +SKIP
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from edgead.models.presets import preset_line, preset_rows, seconds_text
from edgead.models.registry import MODELS, get_spec


def _value(v: Any) -> str:
    """A default as the ``--set KEY=VALUE`` text that gives it (YAML flow style)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def rows(names: Iterable[str] | None = None) -> list[dict]:
    """One plain dict per model: name, supervision, description, parameters and defaults (table order).

    Raises:
        ConfigError: if a name is unknown (lists the known ones).
    """
    chosen = list(names) if names else list(MODELS)
    return [{"name": n, "supervision": get_spec(n).supervision.value, "description": get_spec(n).description,
             "parameters": dict(get_spec(n).defaults)} for n in chosen]


def render_text(names: Iterable[str] | None = None) -> str:
    """The table as ``edgead models`` prints it: one block per model, its parameters as ``KEY=DEFAULT``."""
    blocks = []
    for r in rows(names):
        head = f"{r['name']}  ({r['supervision']})\n  {r['description']}"
        params = "\n".join(f"    {k} = {_value(v)}" for k, v in r["parameters"].items())
        block = f"{head}\n  parameters (train --set KEY=VALUE):\n{params}"
        presets = preset_rows([r["name"]])
        if presets:  # the same lines as train --help
            block += "\n  presets (train --preset NAME; * the CPU default; mt: image AUROC % on magnetic_tile):\n"
            block += "\n".join(preset_line(row) for row in presets)
        blocks.append(block)
    return "\n\n".join(blocks) + "\n"


def render_json(names: Iterable[str] | None = None) -> str:
    """The table as one JSON document (a list of :func:`rows`)."""
    return json.dumps(rows(names), indent=2) + "\n"


def _preset_markdown(row: dict) -> str:
    params = ", ".join(f"`{k}={_value(v)}`" for k, v in row["params"].items()) or "the defaults"
    auroc = "-" if row["magnetic_tile_auroc"] is None else f"{row['magnetic_tile_auroc']:.1f}"
    return (f"| `{row['preset']}` | {'yes' if row['cpu_default'] else ''} | {params} | {auroc} | "
            f"{seconds_text(row['cpu_s_per_100'])} | {row['note']} | {row['measured'] or '-'} |")


def render_markdown() -> str:
    """docs/models/README.md (``make docs``; a test keeps it current)."""
    lines = ["# Models", "",
             "Generated from `edgead/models/registry.py` by `make docs` (the same table as `edgead models`). Every",
             "parameter is set with `edgead train --model NAME --set KEY=VALUE`; `docs/benchmarks.md` compares the",
             "models at these defaults on real images.", "",
             "| model | trains on | what it is |", "|---|---|---|"]
    lines += [f"| `{r['name']}` | {r['supervision']} | {r['description']} |" for r in rows()]
    for r in rows():
        lines += ["", f"## `{r['name']}`", "", "| parameter | default |", "|---|---|"]
        lines += [f"| `{k}` | `{_value(v)}` |" for k, v in r["parameters"].items()]
        presets = preset_rows([r["name"]])
        if presets:
            lines += ["", "| preset (`--preset`) | CPU default | parameters | magnetic_tile image AUROC | CPU s / 100 images "
                      "| what it is | measured by |", "|---|---|---|---|---|---|---|"]
            lines += [_preset_markdown(x) for x in presets]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m edgead.models.catalog docs/models/README.md (make docs)
    import sys
    from pathlib import Path

    Path(sys.argv[1]).write_text(render_markdown())
