"""Record keeping for the hot loop: the part's row is committed before its answer; images never wait on the way.

:class:`Recorder` is called by the loop only. :meth:`Recorder.commit` inserts the part's row together with the
pending updates of earlier parts (what their answer was and took, where their image went) in one SQLite
transaction, and returns once it is committed; the loop answers the PLC after that. Images are handed to
:class:`ImageWriter`, a thread that encodes and archives them and hands back the row's ``image_path`` (or a note
why there is none) for the next commit. A full image queue skips the image and says so in the row; it never
delays the row. The handoff is a row id and arrays in, a row update out, so the writer can move to a process of
its own without touching the loop.

When a commit fails (disk full, read-only filesystem, I/O error) the part is answered with the fail-safe verdict
and ``storage.on_record_failure`` decides: ``stop`` raises :class:`~edgead.errors.RecordError` (the daemon exits
with code 8 after the answer; the record is logged in full so the journal holds it), ``degrade`` keeps the
records in memory (at most ``runtime.record_queue``), answers every part fail-safe while the store refuses
writes, and writes the kept records first once it accepts them again.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import queue
import threading
import time
from dataclasses import asdict, replace

import numpy as np

from edgead.align.aligner import resample_onto
from edgead.daemon.config import RecordFailure
from edgead.errors import RecordError
from edgead.records import ImageArchive, PartRecord, RecordStore, RowUpdate

log = logging.getLogger(__name__)
_STOP = object()
MAX_PENDING_UPDATES = 4096  # row updates waiting for the next commit (bounded: they are only latencies and paths)


class ImageWriter:
    """Archives images on a thread of its own; the results come back as :class:`RowUpdate` for the next commit.

    Args:
        archive: where the images go.
        depth: images waiting at most; a part beyond that is not archived (its row says so).
        nice: added to the thread's nice value (Linux schedules threads one by one), so that resampling and
            encoding images take a core only when the loop does not need it; 0 keeps the loop's.
    """

    def __init__(self, archive: ImageArchive, depth: int, nice: int = 0):
        self.archive = archive
        self.nice = int(nice)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._done: collections.deque[RowUpdate] = collections.deque()
        self.skipped = 0
        self.saved = 0
        self._thread = threading.Thread(target=self._run, name="edgead-images", daemon=True)
        self._thread.start()

    def submit(self, row_id: int, record: PartRecord, image: np.ndarray, amap: np.ndarray | None,
               warp: np.ndarray | None = None, size: tuple[int, int] | None = None) -> bool:
        """Queue an image for archiving (never blocks).

        Args:
            warp, size: given, ``image`` is the frame and is resampled onto the reference grid (``size``) along
                ``warp`` here, on the writer's thread (a station with ROIs resamples only those in its loop).

        Returns:
            False when the queue is full: the image is skipped and the row gets a note.
        """
        try:
            self._queue.put_nowait((row_id, record.part_id, record.t_ns, image, amap, warp, size, time.monotonic_ns()))
            return True
        except queue.Full:
            self.skipped += 1
            self._done.append(RowUpdate(row_id, note="image skipped: archive queue full"))
            return False

    @property
    def waiting(self) -> int:
        """Images queued, not yet taken by the thread."""
        return self._queue.qsize()

    def results(self) -> list[RowUpdate]:
        """The row updates of the images archived (or failed) since the last call."""
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def _run(self) -> None:
        lower_priority(self.nice, "image writer")
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            row_id, part_id, t_ns, image, amap, warp, size, t_submit = item
            try:
                if warp is not None:
                    image = resample_onto(image, warp, size)
                saved = self.archive.save(image, part_id, anomaly_map=amap, t_ns=t_ns)
                self._done.append(RowUpdate(row_id, {"image_path": str(saved.image),
                                                     "image_ms": (time.monotonic_ns() - t_submit) / 1e6}))
                self.saved += 1
            except Exception as exc:  # noqa: BLE001 -- a failed image must never cost the record
                log.warning("part %s: image not archived: %s", part_id, exc)
                self._done.append(RowUpdate(row_id, note=f"image not archived: {exc}"))

    def close(self) -> None:
        """Archive what is queued, then stop the thread (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()


class Recorder:
    """The loop's side of the record store (see the module docstring).

    Args:
        store: the open store (the loop's connection).
        images: the image writer, or None when no images are archived.
        on_failure: :class:`RecordFailure`.
        backlog: records kept in memory at most under ``degrade``.
        events: the station events' writer (:class:`~edgead.daemon.events.EventWriter`), or None.
    """

    def __init__(self, store: RecordStore, images: ImageWriter | None, on_failure: RecordFailure, backlog: int,
                 events=None):
        self.store = store
        self.images = images
        self.events = events
        self.on_failure = RecordFailure(on_failure)
        self.backlog_size = max(1, backlog)
        self._pending: collections.deque[RowUpdate] = collections.deque(maxlen=MAX_PENDING_UPDATES)
        self._backlog: list[PartRecord] = []
        self.failure: RecordError | None = None  # the last commit's error, None once a commit succeeds
        self.written = 0
        self.failed_commits = 0

    @property
    def degraded(self) -> bool:
        """True while the store refuses writes (and records wait in memory under ``degrade``)."""
        return self.failure is not None

    @property
    def images_skipped(self) -> int:
        """Images not archived because the image queue was full."""
        return self.images.skipped if self.images is not None else 0

    @property
    def images_waiting(self) -> int:
        """Images queued for the archive, not yet written."""
        return self.images.waiting if self.images is not None else 0

    @property
    def backlog(self) -> int:
        """Records answered and waiting in memory for the store."""
        return len(self._backlog)

    def _updates(self) -> list[RowUpdate]:
        if self.images is not None:
            self._pending.extend(self.images.results())
        return list(self._pending)

    def commit(self, record: PartRecord) -> int:
        """Commit ``record`` (with the pending updates, after any records kept while the store was failing).

        Returns:
            The row id.

        Raises:
            RecordError: the store refused the write; nothing was written, the pending updates are kept.
        """
        return self.commit_row(record.to_row())

    def commit_row(self, row: tuple) -> int:
        """:meth:`commit` of a part's row made by :func:`~edgead.records.store.part_row` (the loop's path: the
        :class:`PartRecord` is built only if the store refuses the row, for :meth:`keep`).

        Raises:
            RecordError: the store refused the write; nothing was written, the pending updates are kept.
        """
        updates = self._updates()
        try:
            if self._backlog:
                self.store.add_many(self._backlog)
                log.warning("records: the store accepts writes again; %d kept records written", len(self._backlog))
                self.written += len(self._backlog)
                self._backlog.clear()
            row_id = self.store.commit_row(row, updates)
        except RecordError as exc:
            self.failure = exc
            self.failed_commits += 1
            raise
        self._pending.clear()
        self.failure = None
        self.written += 1
        return row_id

    def keep(self, record: PartRecord, error: RecordError) -> None:
        """A record the store refused, for a part already answered fail-safe.

        Raises:
            RecordError: under ``stop``, or when the backlog is full (the store is as good as dead); the record
            is logged in full first, so the journal holds it.
        """
        if self.on_failure is RecordFailure.DEGRADE and len(self._backlog) < self.backlog_size:
            self._backlog.append(record)
            return
        log.error("record not committed (%s): %s", error.message, json.dumps(_jsonable(record), default=str))
        if self.on_failure is RecordFailure.DEGRADE:
            raise RecordError(f"{error.message}; {len(self._backlog)} records kept in memory (runtime.record_queue) "
                              "and the store still refuses writes", hint=error.hint) from error
        raise error

    def amend_kept(self, **fields) -> None:
        """Set fields (the answer, its latency) of the last record kept in memory."""
        if self._backlog:
            self._backlog[-1] = replace(self._backlog[-1], **fields)

    def later(self, update: RowUpdate) -> None:
        """Apply ``update`` with the next commit (or :meth:`flush`)."""
        self._pending.append(update)

    def archive(self, row_id: int, record: PartRecord, image: np.ndarray, amap: np.ndarray | None,
                warp: np.ndarray | None = None, size: tuple[int, int] | None = None) -> None:
        """Hand an image to the writer (never blocks; a full queue skips it and notes so in the row)."""
        if self.images is not None:
            self.images.submit(row_id, record, image, amap, warp, size)

    def flush(self) -> None:
        """Write the pending updates now (between parts, and at stop); a failure is logged, not raised."""
        updates = self._updates()
        if not updates:
            return
        try:
            self.store.update(updates)
            self._pending.clear()
        except RecordError as exc:
            log.warning("records: pending updates not written: %s", exc)

    def close(self) -> None:
        """Finish the images, write what is pending, and log the records that could not be written."""
        if self.images is not None:
            self.images.close()
        self.flush()
        if self._backlog:
            try:
                self.store.add_many(self._backlog)
                self.written += len(self._backlog)
            except RecordError as exc:
                for record in self._backlog:
                    log.error("record not committed (%s): %s", exc.message,
                              json.dumps(_jsonable(record), default=str))
            self._backlog.clear()


def lower_priority(nice: int, what: str) -> None:
    """Add ``nice`` to the calling thread's nice value (no-op for 0; a refusal is logged, never raised)."""
    if nice <= 0:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError) as exc:  # not Linux, or a sandbox that refuses it
        log.warning("%s: cannot lower the thread's priority (nice +%d): %s", what, nice, exc)


def _jsonable(record: PartRecord) -> dict:
    out = asdict(record)
    out["verdict"] = record.verdict.value
    out["roi_scores"] = dict(record.roi_scores)
    return out
