"""The writer thread: records every part in SQLite and archives images, off the hot path.

Drop policy: records are never dropped -- when ``record_queue`` is full the loop waits for the writer (after the
PLC already has its result). Images are best effort -- when ``image_queue`` images are pending, a new image is not
archived and its record says ``image skipped: archive queue full``.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import replace

import numpy as np

from edgead.records import ImageArchive, PartRecord, RecordStore

log = logging.getLogger(__name__)
_STOP = object()


class Recorder:
    """Owns the record store and the image archive; use as a context manager (``close`` drains the queue)."""

    def __init__(self, store: RecordStore, archive: ImageArchive | None, record_queue: int, image_queue: int):
        self.store = store
        self.archive = archive
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, record_queue))
        self._image_slots = threading.BoundedSemaphore(max(1, image_queue))
        self.images_skipped = 0
        self.written = 0
        self.failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edgead-recorder", daemon=True)
        self._thread.start()

    def submit(self, record: PartRecord, image: np.ndarray | None = None, amap: np.ndarray | None = None) -> None:
        """Queue a part (blocks when the record queue is full; never drops a record)."""
        if self.failed is not None:
            raise self.failed
        if image is not None and self.archive is not None:
            if self._image_slots.acquire(blocking=False):
                self._queue.put((record, image, amap))
                return
            self.images_skipped += 1
            note = "image skipped: archive queue full"
            record = replace(record, error=f"{record.error}; {note}" if record.error else note)
        self._queue.put((record, None, None))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            record, image, amap = item
            try:
                if image is not None:
                    try:
                        saved = self.archive.save(image, record.part_id, anomaly_map=amap, t_ns=record.t_ns)
                        record = replace(record, image_path=str(saved.image))
                    except Exception as exc:  # an archive failure must not lose the record
                        log.warning("part %s: image not archived: %s", record.part_id, exc)
                        record = replace(record, error=f"image not archived: {exc}")
                    finally:
                        self._image_slots.release()
                self.store.add(record)
                self.written += 1
            except BaseException as exc:  # the loop re-raises it on the next submit
                log.error("record store failed: %s", exc)
                self.failed = exc

    def close(self) -> None:
        """Write everything queued, then stop the thread (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
