"""Generate the tables of ``docs/plant-integration.md`` from the code's own tables.

The page is written by hand; the blocks between ``<!-- generated:NAME -->`` and ``<!-- end:NAME -->`` are rendered
here: the Modbus register map (``RegisterMapConfig`` defaults and their descriptions), the OPC UA address space
and its drift event type (:mod:`edgead.opcua.address_space`) and the MQTT message fields
(``edgead/north/part-result.schema.json``, ``edgead/north/station-event.schema.json``).

Usage:
    python -m edgead.plant_docs docs/plant-integration.md          # or: make docs
    python -m edgead.plant_docs --check docs/plant-integration.md
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

from edgead.opcua.address_space import event_table, markdown_table
from edgead.plc.config import RegisterMapConfig


def register_map() -> str:
    """The default Modbus register and coil map (0-based, with Modicon numbering), as Markdown."""
    from edgead.docsgen import EXTRA

    lines = ["| signal (`plc.registers.*`) | kind | address | Modicon | meaning |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(RegisterMapConfig):
        if not f.name.endswith(("_register", "_coil")):
            continue  # a length (lot_id_chars), described with its register
        coil = f.name.endswith("_coil")
        address = f.default
        modicon = f"{address + (1 if coil else 40001):05d}" if address is not None else "-"
        lines.append(f"| `{f.name}` | {'coil' if coil else 'holding register'} | {address} | {modicon} | "
                     f"{EXTRA.get('plc.registers.' + f.name, '')} |")
    return "\n".join(lines)


def mqtt_schema(path: Path | None = None) -> str:
    """A message's fields from its shipped JSON Schema (default: the part result's), as Markdown."""
    from edgead.north.message import SCHEMA_PATH, load_schema

    schema = load_schema(path or SCHEMA_PATH)
    required = set(schema["required"])
    lines = ["| field | type | always present | meaning |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        kind = prop.get("type") or ("const " + json.dumps(prop["const"]) if "const" in prop else
                                    "one of " + ", ".join(f"`{v}`" for v in prop.get("enum", [])))
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        lines.append(f"| `{name}` | {kind} | {'yes' if name in required else 'no'} | {prop.get('description', '')} |")
    return "\n".join(lines)


def mqtt_event_schema() -> str:
    """The station-event message's fields, as Markdown."""
    from edgead.north.message import EVENT_SCHEMA_PATH

    return mqtt_schema(EVENT_SCHEMA_PATH)


BLOCKS = {"register-map": register_map, "opcua-address-space": markdown_table, "opcua-drift-event": event_table,
          "mqtt-schema": mqtt_schema, "mqtt-event-schema": mqtt_event_schema}


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current rendering."""
    for name, fn in BLOCKS.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"block {name!r} is missing (<!-- generated:{name} --> ... <!-- end:{name} -->)")
        text = pattern.sub(lambda m, fn=fn: m.group(1) + fn() + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` compare) the generated blocks; 1 when ``--check`` finds them out of date."""
    parser = argparse.ArgumentParser(prog="python -m edgead.plant_docs", description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    current = args.page.read_text()
    text = render(current)
    if args.check:
        if text != current:
            print(f"{args.page} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    args.page.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
