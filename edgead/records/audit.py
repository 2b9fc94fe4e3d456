"""Who asked the station for what: one ``audit`` row per OPC UA method call or variable write, refused ones
too, and every refused login.

A row names the caller (``who``: the user name, ``anonymous``; ``role``; ``login``: how they proved it, a password
or an X.509 user certificate with its subject; ``client``: the client application's certificate subject), what
they asked (``action`` ``call``/``write``/``login``, ``target`` the method or node, ``arguments`` as bounded JSON), the
answer (``status``: an OPC UA status code name such as ``Good``, ``BadUserAccessDenied``,
``BadInvalidArgument``) and when. Rows are only ever added.

Example:
    >>> with RecordStore("records.sqlite") as store:                    # doctest: +SKIP
    ...     add_audit(store, AuditRecord.now(who="anna", role="operator", login="password", client="",
    ...                                      action=AuditAction.CALL, target="Trigger",
    ...                                      arguments=bounded_arguments({"PartId": "A17"}), status="Good"))
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Mapping

from edgead.records.store import RecordStore, Stamped, TimeBound, _where

MAX_ARGUMENT_CHARS = 80
"""A longer argument (a 10 000-character part id) is kept as its first characters and its length."""
MAX_ARGUMENTS_CHARS = 512
"""The most characters of one row's ``arguments``: more arguments than fit are counted, not kept."""
AUDIT_COLUMNS = ("t_ns", "t_utc", "source", "who", "role", "login", "client", "action", "target", "arguments",
                 "status", "detail")
_INSERT = f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})"


class AuditAction(str, Enum):
    """What a client did."""

    CALL = "call"  # a method call
    WRITE = "write"  # a write to a variable
    LOGIN = "login"  # a refused login (accepted logins are not rows: the requests they make are)


@dataclass(frozen=True)
class AuditRecord(Stamped):
    """One request and its answer (see the module docstring); ``id`` is set by the store."""

    t_ns: int
    who: str
    role: str
    login: str
    client: str
    action: AuditAction
    target: str
    arguments: str
    status: str
    detail: str | None = None
    source: str = "opcua"
    id: int | None = None

    def to_row(self) -> tuple:
        values = {**asdict(self), "t_utc": self.t_utc, "action": AuditAction(self.action).value}
        return tuple(values[c] for c in AUDIT_COLUMNS)

    def to_dict(self) -> dict:
        """The row as JSON-ready values (``edgead records --audit --json``)."""
        return {"id": self.id, **dict(zip(AUDIT_COLUMNS, self.to_row()))}

    def line(self) -> str:
        """One human-readable line (``edgead records --audit``, the daemon's log)."""
        detail = f" ({self.detail})" if self.detail else ""
        return (f"{self.t_utc} {self.source} {self.who} [{self.role}, {self.login}] {AuditAction(self.action).value} "
                f"{self.target} {self.arguments} -> {self.status}{detail}")


def bounded(value: object) -> object:
    """A JSON-ready copy of one argument, strings cut to :data:`MAX_ARGUMENT_CHARS` (with their length)."""
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    text = value if isinstance(value, str) else repr(value)
    if len(text) > MAX_ARGUMENT_CHARS:
        return f"{text[:MAX_ARGUMENT_CHARS]}...({len(text)} chars)"
    return text


def bounded_arguments(arguments: Mapping[str, object]) -> str:
    """The arguments as compact JSON of at most :data:`MAX_ARGUMENTS_CHARS` characters: each value
    :func:`bounded`; when they still do not fit, the first ones that do and ``"...": N`` more."""
    kept: dict[str, object] = {}
    items = list(arguments.items())
    for i, (name, value) in enumerate(items):
        trial = {**kept, str(name)[:MAX_ARGUMENT_CHARS]: bounded(value)}
        left = len(items) - i - 1
        if len(json.dumps({**trial, "...": left} if left else trial, ensure_ascii=False)) > MAX_ARGUMENTS_CHARS:
            kept["..."] = len(items) - i
            break
        kept = trial
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


def add_audit(store: RecordStore, record: AuditRecord) -> int:
    """Commit one audit row.

    Returns:
        Its row id.

    Raises:
        RecordError: the write failed.
    """
    return store.insert(_INSERT, record.to_row())


def audit_rows(store: RecordStore, since: TimeBound = None, until: TimeBound = None,
               limit: int | None = None) -> list[AuditRecord]:
    """Audit rows in time order (the newest ``limit`` of them when a limit is given)."""
    where, params = _where(since, until, None)
    sql = f"SELECT id, {', '.join(AUDIT_COLUMNS)} FROM audit{where} ORDER BY t_ns DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    out = []
    for row in reversed(store.read(sql, params)):
        values = dict(zip(("id",) + AUDIT_COLUMNS, row))
        del values["t_utc"]
        values["action"] = AuditAction(values["action"])
        out.append(AuditRecord(**values))
    return out
