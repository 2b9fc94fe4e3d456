"""The OPC UA server's audit trail: who called which method or wrote which variable, and what they were answered.

asyncua does not tell a method's callback who called it. The permission ruleset does see the session's user for
every request, just before the request is processed in the same asyncio task: it puts the :class:`Caller` into the
context variable :data:`CALLER`, where the method callbacks (awaited in that task) read it. A callback that finds no
caller refuses the call (``BadUserAccessDenied``): nothing runs on behalf of someone the trail cannot name.

Rows go to the record store (:mod:`edgead.records.audit`) through :class:`Auditor`: one worker thread with its own
SQLite connection, so neither the server's asyncio loop nor the station's loop waits for a write (SQLite's WAL lets
the station's commits and the audit rows interleave; a commit waits at most for one audit row's transaction).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
from dataclasses import dataclass
from pathlib import Path

from edgead.records.audit import AuditAction, AuditRecord, add_audit, bounded_arguments

log = logging.getLogger(__name__)
BUSY_TIMEOUT_S = 0.5
"""How long an audit row waits for SQLite's write lock before the request it records is refused. Short: the
session's next requests wait behind the call, and asyncua clients drop a connection whose keep-alive read takes
longer than a second."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the user (``anonymous`` without one), their role, how they logged in (``password``,
    ``x509 SUBJECT``, ``anonymous``) and the client application's certificate subject (empty without one)."""

    name: str
    role: str
    login: str
    client: str

    def entry(self, action: AuditAction, target: str, arguments: dict, status: str,
              detail: str | None = None) -> AuditRecord:
        """An audit row of this caller's request."""
        return AuditRecord.now(who=self.name, role=self.role, login=self.login, client=self.client, action=action,
                               target=target, arguments=bounded_arguments(arguments), status=status, detail=detail)


CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("edgead_opcua_caller", default=None)


class Auditor:
    """Writes audit rows to the record store from one worker thread, and logs each one.

    Args:
        database: the record store (``storage.database``); None: rows are only logged (a server without a
            station, as in the server's own tests).
        synchronous: the store's ``storage.synchronous``.
    """

    def __init__(self, database: Path | None, synchronous="normal"):
        self.database, self.synchronous = database, synchronous
        self.recorded = 0
        self.failures = 0
        self._store = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="edgead-opcua-audit")
        if database is not None:  # opened (and migrated) now: a store that cannot be opened stops the start
            self._open()

    def _open(self):
        from edgead.records import RecordStore

        if self._store is None:
            self._store = RecordStore(self.database, timeout_s=BUSY_TIMEOUT_S, synchronous=self.synchronous)
        return self._store

    async def record(self, entry: AuditRecord) -> bool:
        """Log and commit one row; the caller's loop keeps running meanwhile. False (logged, counted) when the
        row could not be committed: the request it records must not be carried out."""
        future = self._submit(entry)
        if future is None:
            return True
        try:
            await asyncio.wrap_future(future)
        except Exception:  # noqa: BLE001 -- _write logged and counted it
            return False
        return True

    def record_soon(self, entry: AuditRecord) -> None:
        """Log and commit one row without waiting (a refusal: nothing is carried out either way)."""
        self._submit(entry)

    def _submit(self, entry: AuditRecord) -> concurrent.futures.Future | None:
        level = logging.INFO if entry.status == "Good" else logging.WARNING
        log.log(level, "OPC UA audit: %s", entry.line())
        if self.database is None:
            return None
        try:
            return self._executor.submit(self._write, entry)
        except RuntimeError:  # closed: the server is stopping
            self._failed(entry, "the server is stopping")
            return None

    def _write(self, entry: AuditRecord) -> None:
        from edgead.errors import EdgeadError

        try:
            add_audit(self._open(), entry)
            self.recorded += 1
        except EdgeadError as exc:
            self._failed(entry, exc)
            raise

    def _failed(self, entry: AuditRecord, why) -> None:
        self.failures += 1
        log.error("OPC UA audit: row not recorded (%s): %s%s", why, entry.line(),
                  "; the request was refused" if entry.status == "Good" else "")

    def retarget(self, database: Path | None, synchronous="normal") -> None:
        """Write to another database from the next row on (a reload that moved ``storage.database``)."""
        if (database, synchronous) != (self.database, self.synchronous):
            self._executor.submit(self._close_store)
            self.database, self.synchronous = database, synchronous

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def close(self) -> None:
        """Write the rows still queued, then close the connection (idempotent)."""
        self._executor.shutdown(wait=True)
        self._close_store()
