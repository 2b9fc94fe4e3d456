"""The audit table: schema 7 migration of an older store, rows in and out, bounded arguments, and `records --audit`."""
from __future__ import annotations

import json
import sqlite3

from edgead.cli import main
from edgead.errors import ExitStatus
from edgead.records import RecordStore
from edgead.records.audit import (MAX_ARGUMENT_CHARS, MAX_ARGUMENTS_CHARS, AuditAction, AuditRecord, add_audit,
                                  audit_rows, bounded_arguments)
from edgead.records.store import COLUMNS
from edgead.verdict import Verdict
from old_stores import old_store  # tests/helpers

T0 = 1_800_000_000_000_000_000


def _row(t_ns: int, who: str = "anna", status: str = "Good", **kw) -> AuditRecord:
    base = dict(t_ns=t_ns, who=who, role="operator", login="password", client="CN=scada", action=AuditAction.CALL,
                target="Trigger", arguments=bounded_arguments({"PartId": "A17"}), status=status)
    return AuditRecord(**{**base, **kw})


def test_a_version_6_store_is_migrated_with_an_audit_table_and_keeps_its_parts(tmp_path):
    db = tmp_path / "v6.db"
    conn = old_store(db, 6)
    v6 = [c for c in COLUMNS if c != "requested_by"]
    conn.execute(f"INSERT INTO parts ({', '.join(v6)}) VALUES ({', '.join('?' * len(v6))})",
                 ("2027-01-15T08:00:00.000000Z", T0, "P1", 1, "accept", 0.1, 0.2, *[None] * 6, "ab", None, "{}", None, None, None, None,
                  "", None, None, None))
    conn.close()
    with RecordStore(db) as store:
        old = next(store.query())
        assert old.part_id == "P1" and old.verdict is Verdict.ACCEPT and old.requested_by is None
        assert audit_rows(store) == []
        first = add_audit(store, _row(T0 + 2, status="BadUserAccessDenied", who="view", role="viewer"))
        add_audit(store, _row(T0 + 1))
        rows = audit_rows(store)
        assert [(r.who, r.status) for r in rows] == [("anna", "Good"), ("view", "BadUserAccessDenied")]  # by time
        assert rows[1].id == first and rows[1].action is AuditAction.CALL and rows[1].client == "CN=scada"
        assert [r.who for r in audit_rows(store, since=T0 + 2)] == ["view"]
        assert [r.who for r in audit_rows(store, limit=1)] == ["view"]  # the newest
    conn = sqlite3.connect(db)
    assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == "7"
    conn.close()


def test_arguments_are_bounded_per_value_and_per_row():
    assert bounded_arguments({"PartId": "A17"}) == '{"PartId":"A17"}'
    long = json.loads(bounded_arguments({"PartId": "x" * 10_000}))["PartId"]
    assert long.startswith("x" * MAX_ARGUMENT_CHARS) and long.endswith("...(10000 chars)")
    many = bounded_arguments({f"arg{i}": "y" * 70 for i in range(40)})
    assert len(many) <= MAX_ARGUMENTS_CHARS
    kept = json.loads(many)
    assert kept["..."] == 40 - (len(kept) - 1)  # what did not fit is counted
    assert json.loads(bounded_arguments({"value": b"\x00\x01", "n": 3, "x": None})) == \
        {"value": "b'\\x00\\x01'", "n": 3, "x": None}


def test_records_audit_lists_the_rows_as_lines_and_json(tmp_path, capsys):
    db = tmp_path / "records.sqlite"
    with RecordStore(db) as store:
        add_audit(store, _row(T0))
        add_audit(store, _row(T0 + 1, who="?", role="", login="x509 CN=intruder", action=AuditAction.LOGIN,
                              target="session", arguments="{}", status="BadUserAccessDenied",
                              detail="certificate not in opcua.users_file"))
    assert main(["records", str(db), "--audit"]) == ExitStatus.OK
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert "anna [operator, password] call Trigger {\"PartId\":\"A17\"} -> Good" in lines[0]
    assert "login session {} -> BadUserAccessDenied (certificate not in opcua.users_file)" in lines[1]
    assert "2 audit rows" in out.err
    assert main(["records", str(db), "--audit", "--json"]) == ExitStatus.OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["who"], r["action"], r["status"]) for r in rows] == \
        [("anna", "call", "Good"), ("?", "login", "BadUserAccessDenied")]
    assert rows[0]["t_utc"].endswith("Z") and rows[0]["id"] == 1
