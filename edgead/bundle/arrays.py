"""Bounded loading of a bundle's ``.npz`` files: every ``.npy`` header is read and checked before any array is
allocated.

When a bundle is written, :func:`summarise_npz` records each ``.npz`` file's array count and total bytes in the
metadata (``arrays: {state.npz: {count: 12, nbytes: 1048576}}``, ``BundleMeta.arrays``); that metadata is hashed and signed with the rest.
:func:`load_npz` refuses a file whose headers declare more arrays or bytes than recorded, an object or structured
dtype (pickles), a member whose stored size disagrees with its header (a decompression bomb declares a small array
and inflates to a large one, or the reverse), or a total above half of this machine's memory whatever the metadata
says.

Example:
    >>> arrays = load_npz(bundle.file("state.npz"), caps_for(bundle.meta, "state.npz"))   # doctest: +SKIP
"""
from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from edgead.contract.meta import BundleMeta
from edgead.errors import BundleError

MAX_ARRAYS = 4096
LEGACY_MAX_BYTES = 4 << 30
HINT = "use the original bundle; never edit bundle files by hand"


@dataclass(frozen=True)
class ArrayCaps:
    """Upper bounds for one ``.npz`` file.

    Attributes:
        max_arrays: members allowed.
        max_bytes: total bytes of all arrays once loaded.
    """

    max_arrays: int
    max_bytes: int


def memory_cap() -> int:
    """Half of this machine's physical memory: no bundle array set may need more, whatever its metadata says."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return LEGACY_MAX_BYTES


def caps_for(meta: BundleMeta | None, name: str) -> ArrayCaps:
    """The caps of ``name`` from the bundle's metadata (``meta.arrays``); bundles written before it (and no
    metadata) get :data:`LEGACY_MAX_BYTES` and :data:`MAX_ARRAYS`. Always at most :func:`memory_cap`."""
    rec = meta.arrays.get(name) if meta is not None else None
    if rec is not None:
        return ArrayCaps(rec.count, min(rec.nbytes, memory_cap()))
    return ArrayCaps(MAX_ARRAYS, min(LEGACY_MAX_BYTES, memory_cap()))


@dataclass(frozen=True)
class ArrayHeader:
    """One member's declared array."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


def read_headers(path: str | os.PathLike) -> list[ArrayHeader]:
    """The ``.npy`` headers of every member of an ``.npz`` file, each checked against its stored size.

    Raises:
        BundleError: not a zip of ``.npy`` files, an object/structured dtype, a negative or overflowing shape, or a
            member whose stored size differs from its header (naming the file and member).
    """
    path = Path(path)
    where = f"{path.name} ({path.parent})"
    out = []
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ARRAYS:
                raise BundleError(f"{where} has {len(infos)} members (at most {MAX_ARRAYS})", hint=HINT)
            for info in infos:
                if not info.filename.endswith(".npy") or info.is_dir():
                    raise BundleError(f"{where}: member {info.filename!r} is not an .npy array", hint=HINT)
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=10000)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=10000)
                    else:
                        raise BundleError(f"{where}: member {info.filename!r} has .npy version {version}", hint=HINT)
                    header_len = f.tell()
                name = info.filename[:-4]
                if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
                    raise BundleError(f"{where}: array {name!r} has dtype {dtype} (objects or records are refused: "
                                      "bundles hold plain numeric arrays)", hint=HINT)
                if any((not isinstance(d, int)) or d < 0 for d in shape):
                    raise BundleError(f"{where}: array {name!r} declares shape {shape}", hint=HINT)
                nbytes = math.prod(shape) * dtype.itemsize
                if info.file_size != header_len + nbytes:
                    raise BundleError(f"{where}: array {name!r} declares {nbytes} bytes ({shape} {dtype}) but its "
                                      f"member stores {info.file_size - header_len}", hint=HINT)
                out.append(ArrayHeader(name, tuple(shape), dtype, nbytes))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise BundleError(f"{where} is not a valid .npz file ({exc})", hint=HINT) from exc
    return out


def summarise_npz(path: str | os.PathLike) -> dict:
    """``{"count": N, "nbytes": TOTAL}`` of an ``.npz`` file, recorded in the metadata when a bundle is written."""
    headers = read_headers(path)
    return {"count": len(headers), "nbytes": sum(h.nbytes for h in headers)}


def load_npz(path: str | os.PathLike, caps: ArrayCaps) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file after checking its headers against ``caps``.

    Args:
        path: the file.
        caps: from :func:`caps_for`.

    Returns:
        name -> array (``allow_pickle=False``).

    Raises:
        BundleError: a header breaks a cap or is inconsistent (see :func:`read_headers`); nothing large is allocated.
    """
    headers = read_headers(path)
    where = f"{Path(path).name} ({Path(path).parent})"
    if len(headers) > caps.max_arrays:
        raise BundleError(f"{where} holds {len(headers)} arrays; the bundle's metadata allows {caps.max_arrays}",
                          hint=HINT)
    total = 0
    for h in headers:
        total += h.nbytes
        if total > caps.max_bytes:
            raise BundleError(f"{where}: array {h.name!r} ({h.shape} {h.dtype}) brings the total to {total} bytes, "
                              f"above the {caps.max_bytes} bytes the bundle's metadata allows", hint=HINT)
    with np.load(path, allow_pickle=False) as data:
        return {h.name: data[h.name] for h in headers}
