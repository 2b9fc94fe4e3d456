"""Single-file bundles: an uncompressed POSIX tar of the bundle's files (``NAME.edgead``).

Unpacking is bounded before a byte is written: only regular files with contained names (no links, devices,
folders-as-files, sparse members, absolute paths or ``..``), at most :data:`MAX_MEMBERS` of them, and a total size
that fits both in the archive itself (an uncompressed tar stores every byte it unpacks, so a larger total means a
sparse or forged header) and under :data:`MAX_UNPACKED_BYTES` and the free disk space. Files are unpacked into a
temporary folder beside the destination, which is removed on any failure. The result is cached by the archive's
sha256 so repeated loads are cheap, and every load still verifies all hashes.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from edgead.bundle.manifest import sha256_file
from edgead.bundle.paths import check_name, contained
from edgead.errors import BundleError, OutputError, short_path, writing

MAX_MEMBERS = 256
MAX_UNPACKED_BYTES = 16 << 30
FREE_SPACE_MARGIN_BYTES = 256 << 20
TAR_HEADER_BYTES = 512
UNSAFE_HINT = "do not use it; pack bundles with `edgead pack` or `edgead train --out NAME.edgead`"


def pack_bundle(bundle_dir: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Pack a bundle directory into one file (written atomically).

    Args:
        bundle_dir: a bundle directory (verified first: names contained, hashes, no links).
        archive: the output file, conventionally ``NAME.edgead``.

    Returns:
        The archive path.

    Raises:
        BundleError: the bundle does not verify.  OutputError: ``archive`` is a directory, or the disk is full.
    """
    from edgead.bundle.core import load_bundle

    bundle = load_bundle(bundle_dir)
    out = Path(archive)
    if out.is_dir():
        raise OutputError(f"bundle archive {short_path(out)} is a directory",
                          hint=f"name the file, e.g. {out / (bundle.root.name + '.edgead')}")
    with writing(out, "bundle archive"):
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_tar(bundle, out)
    return out


def _write_tar(bundle, out: Path) -> None:
    from edgead.bundle.core import sidecar_names

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted([*bundle.manifest["files"], *sidecar_names(bundle.root)]):
                path = contained(bundle.root, name, f"bundle {bundle.root}")  # re-checked: no link since loading
                info = tar.gettarinfo(str(path), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                with open(path, "rb") as f:
                    tar.addfile(info, f)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cache_root() -> Path:
    base = os.environ.get("EDGEAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edgead")
    return Path(base) / "bundles"


def check_members(members: list[tarfile.TarInfo], archive: Path, archive_bytes: int, free_bytes: int) -> int:
    """Refuse an archive whose members are unsafe or too large, before anything is extracted (pure).

    Args:
        members: the archive's headers.
        archive: its path, for messages.
        archive_bytes: its size on disk.
        free_bytes: free space where it would be unpacked.

    Returns:
        The total size the members unpack to.

    Raises:
        BundleError: naming the member and the bound it breaks.
    """
    where = f"bundle archive {archive}"
    if len(members) > MAX_MEMBERS:
        raise BundleError(f"{where} has {len(members)} members; a bundle has at most {MAX_MEMBERS}", hint=UNSAFE_HINT)
    total, seen = 0, set()
    for m in members:
        kind = ("a sparse file" if m.issparse() else "a symbolic link" if m.issym() else "a hard link" if m.islnk()
                else "a device" if (m.ischr() or m.isblk()) else "a FIFO" if m.isfifo() else "a folder" if m.isdir()
                else None if m.isfile() else "not a regular file")
        if kind is not None:
            raise BundleError(f"{where}: unsafe member {m.name!r} ({kind})", hint=UNSAFE_HINT)
        check_name(m.name, f"{where}: unsafe member")
        if m.name in seen:
            raise BundleError(f"{where}: member {m.name!r} appears twice", hint=UNSAFE_HINT)
        seen.add(m.name)
        if m.size < 0:
            raise BundleError(f"{where}: member {m.name!r} has a negative size", hint=UNSAFE_HINT)
        total += m.size
    if total > archive_bytes:
        raise BundleError(f"{where} would unpack to {total} bytes, more than the {archive_bytes}-byte archive holds "
                          "(forged or sparse headers)", hint=UNSAFE_HINT)
    if total > MAX_UNPACKED_BYTES:
        raise BundleError(f"{where} would unpack to {total} bytes, above the {MAX_UNPACKED_BYTES}-byte limit",
                          hint=UNSAFE_HINT)
    if total + FREE_SPACE_MARGIN_BYTES > free_bytes:
        raise BundleError(f"{where} needs {total} bytes but only {free_bytes} are free (keeping "
                          f"{FREE_SPACE_MARGIN_BYTES} spare)", hint="free disk space or set EDGEAD_CACHE_DIR")
    return total


def unpack_bundle(archive: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Unpack a ``.edgead`` archive into ``dest`` (default: a cache dir keyed by the archive's sha256).

    Raises:
        BundleError: not a tar archive, truncated, with unsafe members, or too large; nothing is left on disk.
    """
    path = Path(archive)
    try:
        digest = sha256_file(path)
        archive_bytes = path.stat().st_size
    except OSError as exc:
        raise BundleError(f"bundle archive {path} is unreadable ({exc})") from exc
    target = Path(dest) if dest else _cache_root() / digest
    if dest is None and (target / "manifest.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        try:
            with tarfile.open(path, "r:") as tar:
                members = tar.getmembers()
                check_members(members, path, archive_bytes, shutil.disk_usage(tmp).free)
                for m in members:
                    src = tar.extractfile(m)
                    dst = tmp / m.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    with open(dst, "xb") as f:
                        copied = _copy_at_most(src, f, m.size)
                    if copied != m.size:
                        raise BundleError(f"bundle archive {path}: member {m.name!r} is truncated "
                                          f"({copied} of {m.size} bytes)", hint="copy the .edgead file again")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"bundle archive {path} is corrupt or truncated ({exc})",
                              hint="copy the .edgead file again") from exc
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _copy_at_most(src, dst, limit: int, chunk: int = 1 << 20) -> int:
    done = 0
    while done < limit:
        block = src.read(min(chunk, limit - done))
        if not block:
            break
        dst.write(block)
        done += len(block)
    return done
