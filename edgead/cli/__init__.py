"""The ``edgead`` command line: parses, calls the Python API, maps typed errors to exit codes (only here).

Each subcommand module exposes ``register(subparsers)``; its handlers take the parsed args and return an exit code.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

import edgead
from edgead.errors import EdgeadError, ExitStatus

COMMAND_MODULES = (
    "edgead.cli.model_cmds",
    "edgead.cli.registry_cmds",
    "edgead.cli.data_cmds",
    "edgead.cli.convert_cmds",
    "edgead.cli.station_cmds",
    "edgead.cli.deploy_cmds",
    "edgead.cli.demo_cmds",
    "edgead.cli.continual_cmds",
    "edgead.cli.trust_cmds",
    "edgead.cli.teacher_cmds",
    "edgead.cli.ui_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser (help text is generated from the command tables)."""
    import importlib

    parser = argparse.ArgumentParser(prog="edgead", description="Train, convert and run visual anomaly detectors "
                                                                "on inspection stations.")
    parser.add_argument("--version", action="version", version=f"edgead {edgead.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--traceback", action="store_true", help="re-raise errors with their traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command group not present in this build
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit status (see ``edgead.errors.ExitStatus``)."""
    from edgead.observe.logs import logging_scope

    parser = build_parser()
    args = parser.parse_args(argv)
    with logging_scope():
        return _run(args)


def _run(args) -> int:
    from edgead.observe.logs import LogFormat, setup_logging
    from edgead.redact import redact

    level = logging.WARNING - 10 * min(args.verbose, 2)
    setup_logging(level, LogFormat.TEXT)  # one handler; `run` replaces it with the station's (never a second one)
    try:
        return int(args.handler(args) or ExitStatus.OK)
    except EdgeadError as exc:
        if args.traceback:
            raise
        print(redact(f"edgead {args.command}: error: {exc.message}"), file=sys.stderr)
        if exc.hint:
            print(redact(f"  what to do: {exc.hint}"), file=sys.stderr)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        print(f"edgead {args.command}: interrupted", file=sys.stderr)
        return int(ExitStatus.INTERRUPTED)
    except Exception as exc:  # an internal failure: say so, distinctly from bad input
        if args.traceback:
            raise
        print(redact(f"edgead {args.command}: internal error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        print("  what to do: rerun with --traceback and report it", file=sys.stderr)
        return int(ExitStatus.INTERNAL)
