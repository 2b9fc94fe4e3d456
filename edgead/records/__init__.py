"""Part records (SQLite, WAL, one row per part) and the reject-image archive.

Example:
    >>> from edgead.records import PartRecord, RecordStore      # doctest: +SKIP
    >>> with RecordStore("/var/lib/edgead/records.db") as store:
    ...     store.add(PartRecord.now(part_id="A17", seq=1, verdict=Verdict.ACCEPT, score=0.1, raw_score=0.8))
"""
from __future__ import annotations

from edgead.records.export import CSV_COLUMNS, write_csv
from edgead.records.images import ChannelOrder, ImageArchive, ImageFormat, MapScale, SavedImages
from edgead.records.store import SCHEMA_VERSION, Checkpoint, Checkpointer, PartRecord, RecordStore, RowUpdate, Synchronous

__all__ = [
    "CSV_COLUMNS",
    "SCHEMA_VERSION",
    "ChannelOrder",
    "Checkpoint",
    "Checkpointer",
    "ImageArchive",
    "ImageFormat",
    "MapScale",
    "PartRecord",
    "RecordStore",
    "RowUpdate",
    "SavedImages",
    "Synchronous",
    "write_csv",
]
