"""The acknowledged position of a publisher: the last record the broker confirmed, kept durably in a small file.

The record store is the outbox; this file is the only state a publisher adds. It holds the row id **and** the
capture time of the last acknowledged record, so that a record database replaced by a new one (ids restart at 1)
is recognised and published from its start instead of being skipped. Written atomically (temporary file, fsync,
rename, fsync of the folder): after a crash or a power cut it holds either the old or the new position.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "records.sqlite.mqtt-ack"
    >>> write_position(path, AckPosition(41, 1_700_000_000_000_000_000))
    >>> read_position(path)
    AckPosition(record_id=41, t_ns=1700000000000000000)
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from edgead.errors import EdgeadError
from edgead.records.store import RecordStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AckPosition:
    """The last record the broker acknowledged: its row id and capture time (``t_ns``)."""

    record_id: int
    t_ns: int


def read_position(path: Path) -> AckPosition | None:
    """The stored position, or None when there is none (a damaged file is reported and treated as none)."""
    try:
        data = json.loads(path.read_text())
        return AckPosition(int(data["record_id"]), int(data["t_ns"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("acknowledged position %s is unreadable (%s): publishing from the store's start; the "
                    "subscriber de-duplicates on message_id", path, exc)
        return None


def write_position(path: Path, position: AckPosition) -> None:
    """Replace the stored position atomically and durably.

    Raises:
        EdgeadError: if the folder is not writable or the disk is full.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as fh:
            json.dump({"record_id": position.record_id, "t_ns": position.t_ns}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise EdgeadError(f"MQTT acknowledged position {path}: write failed: {exc}",
                          hint="check free disk space and that the state directory is writable") from exc


def resume_after(store: RecordStore, position: AckPosition | None, from_start: bool) -> int:
    """The row id after which publishing resumes.

    Args:
        store: the record store (the outbox).
        position: the stored position, or None on a first start.
        from_start: on a first start, publish every stored record (True) or only new ones (False).

    Returns:
        The last row id considered published.
    """
    last = store.last_id()
    if position is None:
        return 0 if from_start else last
    record = store.get(position.record_id)
    if record is not None and record.t_ns == position.t_ns:
        return position.record_id
    if record is None and position.record_id <= last:
        return position.record_id  # that row was deleted (retention); ids are never reused
    log.warning("records database %s does not hold the acknowledged record %d any more (a new database?): "
                "publishing it from its start", store.path, position.record_id)
    return 0
