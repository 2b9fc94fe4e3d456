"""Generate the station configuration reference (``docs/config.md``) from the config dataclasses.

Every key comes from :class:`edgead.daemon.config.StationConfig` and the sections it nests (walked with
``dataclasses.fields``): its dotted name, its type (enums list their values), its default and its description. A
description is taken, in this order, from the ``Attributes:`` section of the docstring of the class that defines
the field, from the field's trailing ``# comment`` in the source, or from :data:`EXTRA` below (for the fields
whose source has neither; adding a comment in the source makes the entry in :data:`EXTRA` unnecessary). The
example at the top is ``systemd/station.yaml.example`` verbatim. The output is deterministic, so a test can compare
it with the committed file. Nothing here imports torch.

Usage:
    python -m edgead.docsgen docs/config.md        # or: make docs
    python -m edgead.docsgen --check docs/config.md
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import functools
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "systemd" / "station.yaml.example"
EXCLUDED = {"source"}  # StationConfig.source records where the file was loaded from; it is not a key

# Descriptions for fields whose class has neither an ``Attributes:`` entry nor a trailing comment for them.
EXTRA: dict[str, str] = {
    "name": "Station name, for people reading logs and records.",
    "trigger": "What starts an inspection. `auto` is `plc` unless `plc.protocol` is `discrete` (no trigger "
               "input), then `camera`. `plc` with `discrete` is refused.",
    "reference": "Image of a good part on the camera's grid. When set, every frame is aligned to it and ROIs are "
                 "given in its pixels; `null`: frames go to the model as captured (no alignment, no ROIs). "
                 "`edgead check` loads it and checks the ROIs against its size.",
    "rois": "Regions of interest, each inferred separately; the part is accepted only if every ROI is. Empty: the "
            "whole (aligned) image is one region named `part`. Needs `reference`.",
    "camera.url": "Camera URL: `folder://DIR?fps=0&loop=0&pattern=*.png&sort=name`, `file://VIDEO`, `opencv://N`, "
                  "`rtsp://...`, `aravis://ADDRESS` (see the URL parameters below). Query parameters win over the "
                  "keys of this section. A relative `folder://` or `file://` path is relative to the config file. "
                  "Passwords in the URL are shown as `***` in every message.",
    "rois[].name": "ROI name, unique; used in records (`roi_scores`).",
    "rois[].x": "Left edge in reference pixels.",
    "rois[].y": "Top edge in reference pixels.",
    "rois[].width": "Width in pixels (> 0); the ROI must lie inside the reference.",
    "rois[].height": "Height in pixels (> 0).",
    "model.bundle": "The bundle (directory or `.edgead` file) from `edgead train` / `edgead convert`. "
                    "`edgead check` verifies its hashes.",
    "model.engine": "A TensorRT engine file built on this station (`edgead build-engine`); when set it is run "
                    "instead of the bundle's ONNX graph (the bundle still provides the model hash, colour and "
                    "metadata).",
    "model.backend": "Force a backend for the bundle's graph; `null`: the bundle's own runtime, OpenVINO for a "
                     "bundle converted to run on it (`conversion.backend: openvino`; the station refuses to start "
                     "without the `openvino` extra), else ONNX Runtime (a `.engine` path in `model.engine` always "
                     "uses TensorRT).",
    "model.warmup_runs": "Inferences run at start (and on reload) before READY is announced.",
    "storage.database": "SQLite file with one record per part (WAL mode; must be on a local filesystem).",
    "storage.images_dir": "Image archive folder (images with heatmap overlays).",
    "storage.save_images": "Which parts' images are archived.",
    "storage.quota_mb": "Size limit of the image archive; the oldest images are deleted first.",
    "storage.image_format": "Archive encoding: `png` or `jpeg`.",
    "observe.log_level": "`debug`, `info`, `warning` or `error`.",
    "observe.log_format": "`json` (one JSON object per line), `text`, or `auto` (JSON unless stderr is a "
                          "terminal).",
    "observe.metrics_listen": "`HOST:PORT` of the HTTP endpoint serving `/metrics` (Prometheus) and `/healthz`; "
                              "`null` turns it off.",
    "observe.status_interval_s": "How often the systemd `STATUS=` line (parts, parts/min, last verdict) is "
                                 "updated.",
    "plc.url": "pyserial URL of the port: `/dev/ttyUSB0`, `/dev/serial/by-id/...`, `loop://`, `spy://...`, "
               "`socket://HOST:PORT`; `?baud=&parity=&stopbits=&bytesize=` override `plc.serial`. Modbus TCP: "
               "`tcp://HOST:PORT`, the listen address (`modbus-tcp-server`; `tcp://:PORT` is loopback) or the "
               "PLC's address (`modbus-tcp-client`); the port defaults to 502.",
    "plc.protocol": "How the station talks to the PLC (see docs/plc-protocol.md).",
    "plc.failsafe_verdict": "What the PLC is sent for a part recorded as `fault` (camera error, overrun, inference "
                            "error): `reject` (default) or `fault` to tell the cause apart; `accept` is refused.",
    "plc.serial.baudrate": "Bits per second.",
    "plc.serial.parity": "`N`, `E`, `O`, `M` or `S`.",
    "plc.serial.stopbits": "1, 1.5 or 2.",
    "plc.serial.bytesize": "5, 6, 7 or 8 data bits.",
    "plc.modbus.unit_id": "Modbus device address (1..247): the PLC's (client) or the station's (server).",
    "plc.modbus.image_coils": "Server: number of coils in the image (addresses 0..n-1).",
    "plc.registers.verdict_register": "Holding register with the verdict code (0 none, 1 pass, 2 reject, "
                                      "3 no-read, 4 fault).",
    "plc.registers.result_valid_register": "ResultValid: 1 when the result registers hold a fresh result.",
    "plc.registers.counter_register": "Results sent since the link opened (u16, wraps).",
    "plc.registers.part_id_register": "Echo of the trigger's part id (u16).",
    "plc.registers.seq_register": "The station's sequence number (u16, wraps).",
    "plc.registers.score_register": "Normalised score x 1000 (500 = threshold; 65535 = no score).",
    "plc.registers.status_register": "Status word: bit 0 ready, bit 1 busy, bit 2 fault, bit 3 heartbeat.",
    "plc.registers.trigger_register": "PLC -> station: a non-zero part id requests an inspection.",
    "plc.registers.trigger_ack_register": "Station -> PLC: the part id of the trigger the station took.",
    "plc.registers.pass_coil": "Coil: 1 only while the last result is a pass.",
    "plc.registers.result_valid_coil": "Coil copy of ResultValid.",
    "plc.registers.recipe_register": "PLC -> station: the recipe number for the next triggers (0 keeps the recipe "
                                     "in force); written before the trigger. null: not read.",
    "plc.registers.lot_id_register": "PLC -> station: the first register of the lot id text (two ASCII characters "
                                     "per register, high byte first, 0-padded; all 0 keeps the lot in force); "
                                     "written before the trigger. null: not read.",
    "plc.registers.lot_id_chars": "Length of the lot id text in characters (even, 2..64): lot_id_chars / 2 "
                                  "registers from lot_id_register.",
    "plc.ascii.pass_template": "Result line for a pass.",
    "plc.ascii.reject_template": "Result line for a reject.",
    "plc.ascii.no_read_template": "Result line for a no-read (alignment failed).",
    "plc.ascii.fault_template": "Result line for a fault (error, late result, overrun).",
    "plc.ascii.trigger_prefix": "A trigger line is this prefix followed by the part id (1..32 of "
                                "`[A-Za-z0-9_-]`; digits-only ids become numbers).",
    "plc.ascii.max_line_bytes": "Longer lines are garbage.",
    "plc.ascii.encoding": "Text encoding of the telegrams.",
    "plc.discrete.pass_line": "Output pulsed for a pass.",
    "plc.discrete.reject_line": "Output pulsed for every other verdict.",
    "plc.discrete.pulse_ms": "Pulse length.",
}

TITLE = "# Station configuration reference (`STATION.yaml`)"
INTRO = """\
<!-- Generated by `python -m edgead.docsgen docs/config.md` (`make docs`) from `edgead/daemon/config.py` and the
sections it nests. Do not edit by hand: `tests/unit/test_docsgen.py` fails when this file is out of date. -->

The station daemon (`edgead run STATION.yaml`) reads one YAML file. `edgead check STATION.yaml` validates it
without opening any device: keys, types, units, ranges, the bundle's hashes, the reference image, the ROIs and the
storage folders.

- **Sources flow one way**: the defaults below <- the file <- `--set KEY=VALUE` on the command line (the rightmost
  wins; values are parsed as YAML scalars, e.g. `--set camera.timeout_ms=500 --set plc.url=/dev/ttyUSB1`).
- **Strict**: an unknown key is refused with a "did you mean"; a wrong type or an enum value that does not exist
  is refused naming the full key (`plc.registers.verdict_register: expected an integer, got 'x'`). Exit code 3.
- **Units are in the key names** (`_ms`, `_us`, `_s`, `_px`, `_mb`, `_db`): give plain numbers, without a unit.
- **Paths** (type *path*) that are relative resolve against the folder of the config file, the defaults included
  (systemd runs the daemon in `/`); `~` is expanded. A relative `folder://` or `file://` camera does too.
- **`check` means `run` will start**: every section checks its values when it is loaded (ranges, finite numbers,
  the PLC map, the ASCII templates, the size of the rotation search), and `edgead check` then builds what `run`
  builds short of opening the camera and the PLC port: the bundle's hashes, the reference (its header size, then
  the image) and the aligner, the ROIs, the camera URL's parameters, the PLC URL, the archive's encoder, and a
  create-test of the storage folders. The daemon runs the same checks before it opens anything.
- `null` means "not set" where the type allows it.
- Reload: `SIGHUP` (`systemctl reload edgead`) re-reads the file and rebuilds what changed (below, [Reload](#reload));
  if anything fails to open, the station keeps running with its old components and config.
"""


@dataclass(frozen=True)
class Key:
    """One documented key."""

    name: str
    type: str
    default: str
    description: str


# -- reading descriptions from the source ---------------------------------------------------------------------

def parse_attributes(doc: str | None) -> dict[str, str]:
    """The entries of a Google-style ``Attributes:`` section.

    Args:
        doc: a class docstring.

    Returns:
        field name -> description (``a, b: text`` gives both names the text); continuation lines are joined.

    Example:
        >>> parse_attributes("X.\\n\\nAttributes:\\n    a: first\\n        more.\\n    b: second\\n")
        {'a': 'first more.', 'b': 'second'}
    """
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return out
    indent = None
    names: list[str] = []
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if width == 0:
            break
        if indent is None:
            indent = width
        entry = re.match(r"\s*([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)\s*:\s*(.*)$", line)
        if width == indent and entry:
            names = [n.strip() for n in entry.group(1).split(",")]
            for name in names:
                out[name] = entry.group(2).strip()
        elif width > indent and names:
            for name in names:
                out[name] = f"{out[name]} {line.strip()}".strip()
    return out


@functools.lru_cache(maxsize=None)
def trailing_comments(cls: type) -> dict[str, str]:
    """Field (or enum member) name -> its trailing ``# comment`` in the body of ``cls``.

    Args:
        cls: a class whose source is available.

    Returns:
        The comments found, without the ``#``.
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    node = ast.parse(source).body[0]
    for stmt in getattr(node, "body", []):
        target = None
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            target = stmt.target.id
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target = stmt.targets[0].id
        if target is not None and stmt.end_lineno in comments:
            out[target] = comments[stmt.end_lineno]
    return out


def field_description(cls: type, name: str, dotted: str) -> str:
    """The description of field ``name`` of ``cls`` (see the module docstring for the order of sources)."""
    for klass in cls.__mro__:
        if name not in getattr(klass, "__annotations__", {}):
            continue
        attrs = parse_attributes(klass.__doc__)
        if name in attrs:
            return _sentence(attrs[name])
        comment = trailing_comments(klass).get(name)
        if comment:
            return _sentence(comment)
        break
    return EXTRA.get(dotted, "")


def _sentence(text: str) -> str:
    text = _markdown(text.strip())
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", ")", "`")) else ".")


# -- types and defaults --------------------------------------------------------------------------------------

def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _union_args(tp: Any) -> tuple | None:
    if typing.get_origin(tp) in (typing.Union, getattr(types, "UnionType", ())):
        return typing.get_args(tp)
    return None


def type_name(tp: Any) -> str:
    """A type as the reader writes it in YAML (``int or null``, ``one of `a`, `b```, ``path``).

    Example:
        >>> type_name(int | None)
        'integer or null'
    """
    args = _union_args(tp)
    if args is not None:
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if _is_enum(tp):
        return "one of " + ", ".join(f"`{m.value}`" for m in tp)
    if typing.get_origin(tp) in (tuple, list):
        item = typing.get_args(tp)[0]
        return f"list of {type_name(item)}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return {int: "integer", float: "number", str: "string", bool: "true/false", Path: "path"}.get(tp, str(tp))


def yaml_value(value: Any) -> str:
    """A default as it would be written in the YAML file.

    Example:
        >>> yaml_value("OK {part_id}\\r\\n"), yaml_value(None), yaml_value(())
        ('"OK {part_id}\\\\r\\\\n"', 'null', '[]')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z0-9_./:?=&*+-]+", value) and value.lower() not in ("null", "true", "false")
        return value if plain else json.dumps(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return repr(value)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def enum_notes(tp: Any) -> str:
    """``Values: `a`: comment; ...`` for the members of an enum (inside an optional) that have a comment."""
    args = _union_args(tp)
    if args is not None:
        return " ".join(enum_notes(a) for a in args if a is not type(None)).strip()
    if not _is_enum(tp):
        return ""
    comments = trailing_comments(tp)
    parts = [f"`{m.value}`: {_markdown(comments[m.name])}" for m in tp if m.name in comments]
    return ("Values: " + "; ".join(parts) + ".") if parts else ""


# -- walking the config ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """A mapping of keys: its dotted name (``""`` for the top level), intro line and keys."""

    name: str
    intro: str
    keys: tuple[Key, ...]


def walk(cls: type, prefix: str = "") -> list[Section]:
    """The sections of ``cls`` in field order: its own scalar keys first, then each nested section.

    Args:
        cls: a config dataclass.
        prefix: the dotted name of ``cls`` (``""`` for the top level).

    Returns:
        The sections, depth first.
    """
    hints = typing.get_type_hints(cls)
    keys: list[Key] = []
    nested: list[Section] = []
    own = cls.__dict__.get("__annotations__", {})
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.name not in own):  # stable: own fields first
        if not f.init or (not prefix and f.name in EXCLUDED):
            continue
        dotted = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        default = _default(f)
        if dataclasses.is_dataclass(tp):
            nested.extend(walk(tp, dotted))
            continue
        item = typing.get_args(tp)[0] if typing.get_origin(tp) in (tuple, list) else None
        description = " ".join(filter(None, [field_description(cls, f.name, dotted), enum_notes(tp)]))
        keys.append(Key(dotted, type_name(tp), "(required)" if default is dataclasses.MISSING
                        else yaml_value(default), description))
        if item is not None and dataclasses.is_dataclass(item):
            nested.extend(walk(item, f"{dotted}[]"))
    intro = _first_paragraph(cls.__doc__)
    return [Section(prefix, intro, tuple(keys)), *nested]


def _first_paragraph(doc: str | None) -> str:
    return _markdown(" ".join(inspect.cleandoc(doc or "").split("\n\n")[0].split()))


def _markdown(text: str) -> str:
    """reStructuredText literals (````x````) and escaped backslashes of docstrings and comments, as Markdown."""
    return text.replace("``", "`").replace("\\\\", "\\")


def camera_parameters() -> list[tuple[str, str]]:
    """(schemes, "`param` (default), ...") for the URL query parameters of each camera class, from its tables."""
    from edgead.camera import aravis_cam, folder, opencv_cam

    rows = []
    for schemes, module in (("folder", folder), ("file, opencv, rtsp, http(s)", opencv_cam), ("aravis", aravis_cam)):
        params = ", ".join(f"`{name}={yaml_value(module.DEFAULTS.get(name))}`" for name in module.PARAMS)
        rows.append((schemes, params))
    return rows


# -- rendering -------------------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_section(section: Section) -> str:
    """One section as a Markdown heading, intro and table."""
    depth = 2 if "." not in section.name.replace("[]", "") else 3
    title = f"{'#' * depth} `{section.name}`" if section.name else "## Top-level keys"
    lines = [title, ""]
    if section.intro:
        lines += [section.intro, ""]
    if section.keys:
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for k in section.keys:
            lines.append(f"| `{k.name}` | {_cell(k.type)} | `{_cell(k.default)}` | {_cell(k.description)} |")
        lines.append("")
    return "\n".join(lines)


def render(example: str | None = None) -> str:
    """The whole ``docs/config.md`` text.

    Args:
        example: the example YAML; default: ``systemd/station.yaml.example``.

    Returns:
        The Markdown text (deterministic).
    """
    from edgead.daemon.config import StationConfig

    if example is None:
        example = EXAMPLE.read_text()
    parts = [TITLE, "", INTRO, "## Example", "",
             "`systemd/station.yaml.example` (a Modbus RTU line with a GigE camera; `edgead check` passes on it "
             "once the bundle and reference exist):", "", "```yaml", example.rstrip("\n"), "```", ""]
    parts += [render_section(s) for s in walk(StationConfig)]
    parts += ["## Camera URL parameters", "",
              "Query parameters of the camera URL, per scheme (they win over the `camera` keys above; an unknown "
              "parameter is refused). `rtsp://`, `http(s)://` URLs keep their query for the stream: their options "
              "come from the `camera` keys.", "",
              "| scheme | parameters and their defaults |", "|---|---|"]
    parts += [f"| {_cell(s)} | {_cell(p)} |" for s, p in camera_parameters()]
    parts += ["", *reload_section()]
    return "\n".join(parts).rstrip("\n") + "\n"


RELOAD_EFFECT = {
    "live": "applies at the next part",
    "restart": "refused while running: restart the service",
    "sidecar": "nothing in the daemon: read by its sidecar (the MQTT north `python -m edgead.north`, the operator "
               "page `edgead ui`) when it starts",
    "shadow": "the shadow model is reloaded (the new one first; the old one finishes its part)",
    "model": "the model is rebuilt (engine, reference, aligner, ROIs)",
    "recorder": "the record store and image archive are reopened (the old queue is drained first)",
    "metrics_server": "the metrics endpoint is reopened",
    "camera": "the camera is closed, then reopened (the old one again if the new one fails)",
    "plc": "the PLC link is closed, then reopened (the old one again if the new one fails)",
    "logging": "the log handler is installed again",
}


def reload_section() -> list[str]:
    """The ``Reload`` section: what a SIGHUP does when each key changes (from ``edgead.daemon.reload.RELOAD``)."""
    from edgead.daemon.reload import RELOAD

    lines = ["## Reload", "",
             "On `SIGHUP` the daemon reads the file again (with the same checks as at start) and applies every "
             "changed key as below, between two parts. The model is rebuilt at every reload, so a bundle or "
             "reference copied over the old path is picked up. New components that can run beside the old ones are "
             "built first; if one fails, or a key cannot change while running, nothing changes and the error is "
             "logged.", "", "| key | when it changes |", "|---|---|"]
    lines += [f"| `{key}` | {RELOAD_EFFECT[action]} |" for key, action in RELOAD.items()]
    return lines


def undocumented() -> list[str]:
    """Dotted names of keys that have no description anywhere (the test keeps this empty)."""
    from edgead.daemon.config import StationConfig

    return [k.name for s in walk(StationConfig) for k in s.keys if not k.description]


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the reference.

    Returns:
        0, or 1 when ``--check`` finds the file out of date.
    """
    parser = argparse.ArgumentParser(prog="python -m edgead.docsgen", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write, e.g. docs/config.md")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
