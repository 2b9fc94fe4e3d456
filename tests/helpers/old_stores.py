"""A record store as an older edgead left it: the migrations up to a schema version, for migration tests."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from edgead.records.store import APP_NAME, APPLICATION_ID, MIGRATIONS


def old_store(path: Path, version: int) -> sqlite3.Connection:
    """An SQLite file at schema ``version`` (its tables, ``meta`` and application id), open in autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None)
    for v in range(1, version + 1):
        for statement in MIGRATIONS[v]:
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                     [("app", APP_NAME), ("schema_version", str(version))])
    return conn
