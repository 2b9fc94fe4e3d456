"""``edgead ui | ui-passwd``: the operator page beside a station, and its users."""
from __future__ import annotations

import argparse
import getpass
import sys

from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="serve the operator page of a station (last parts, counters, reject gallery, "
                       "labels); reads its records, never blocks the daemon")
    p.add_argument("config", metavar="STATION.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. ui.listen=127.0.0.1:8080")
    p.add_argument("--listen", default=None, metavar="HOST:PORT", help="bind here instead of ui.listen "
                   "(port 0: a free port, printed)")
    p.set_defaults(handler=cmd_ui)

    p = sub.add_parser("ui-passwd", help="add or change a user of the operator page (password read from stdin "
                       "or asked)")
    p.add_argument("file", help="the password file (ui.operators_file); created with mode 0600")
    p.add_argument("name")
    p.add_argument("--role", default="operator", choices=["operator", "viewer"],
                   help="operator: may label parts (default); viewer: may sign in only")
    p.set_defaults(handler=cmd_passwd)


def cmd_ui(args) -> int:
    from edgead.cli.station_cmds import _load
    from edgead.observe.logs import setup_logging
    from edgead.ui.app import bind, serve

    cfg = _load(args)
    setup_logging(cfg.observe.log_level.upper(), cfg.observe.log_format)
    if cfg.ui.operators_file is not None:
        from edgead.ui.auth import load_users

        load_users(cfg.ui.operators_file)  # a missing or broken file is an error now, not at the first label
    sock = bind(cfg, args.listen)
    host, port = sock.getsockname()[:2]
    writable = "labels need an operator" if cfg.ui.operators_file else "read-only (no ui.operators_file)"
    serve(cfg, sock, on_ready=lambda: print(f"operator page on http://{host}:{port}/ ({writable}); records "
                                            f"{cfg.storage.database}", file=sys.stderr, flush=True))
    return ExitStatus.OK


def cmd_passwd(args) -> int:
    from edgead.errors import ConfigError
    from edgead.ui.auth import Role, set_user

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ", hint="run edgead ui-passwd again")
    else:
        password = sys.stdin.readline().rstrip("\n")
    set_user(args.file, args.name, password, Role(args.role))
    print(f"{args.name} ({args.role}) set in {args.file}", file=sys.stderr)
    return ExitStatus.OK
