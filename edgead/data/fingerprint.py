"""The training-data fingerprint recorded in bundles: it changes when any image is added, removed or edited.

Example:
    >>> fingerprint(scan_category("datasets/bracket").train)  # doctest: +SKIP
    '3f1c...'
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from edgead.data.mvtec import Sample
from edgead.errors import DataError

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes.

    Raises:
        DataError: if the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r} to fingerprint it: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def fingerprint(samples: Iterable[Sample], root: str | os.PathLike | None = None) -> str:
    """sha256 over the sorted ``relative_path\\tsize\\tsha256`` lines of the samples' image files.

    Paths are taken relative to ``root`` (default: the folder common to all samples) with ``/`` separators,
    so moving a dataset keeps its fingerprint, while renaming, adding, removing or editing an image changes it.

    Args:
        samples: the images (e.g. ``category.train``).
        root: the folder paths are relative to.

    Returns:
        64 hex digits.

    Raises:
        DataError: if there are no samples, or a file is missing or unreadable.
    """
    paths = [Path(s.path) for s in samples]
    if not paths:
        raise DataError("cannot fingerprint an empty set of images", hint="pass the training samples")
    base = Path(root) if root is not None else Path(os.path.commonpath([str(p.parent) for p in paths]))
    lines = []
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise DataError(f"cannot fingerprint {str(path)!r}: {exc.strerror or exc}",
                            hint="re-scan the dataset; a file vanished since") from exc
        lines.append(f"{Path(os.path.relpath(path, base)).as_posix()}\t{size}\t{file_sha256(path)}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
