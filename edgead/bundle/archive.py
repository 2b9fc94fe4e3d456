"""Single-file bundles: an uncompressed POSIX tar of the bundle's files (``NAME.edgead``).

Unpacking refuses links, absolute paths and ``..``; the result is cached by the archive's sha256 so repeated
loads are cheap, and every load still verifies all hashes.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from edgead.bundle.manifest import sha256_file
from edgead.errors import BundleError, OutputError, short_path, writing


def pack_bundle(bundle_dir: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Pack a bundle directory into one file (written atomically).

    Args:
        bundle_dir: a bundle directory (verified first).
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
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted([*bundle.manifest["files"], "manifest.json"]):
                info = tar.gettarinfo(str(bundle.root / name), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                with open(bundle.root / name, "rb") as f:
                    tar.addfile(info, f)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cache_root() -> Path:
    base = os.environ.get("EDGEAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edgead")
    return Path(base) / "bundles"


def unpack_bundle(archive: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Unpack a ``.edgead`` archive into ``dest`` (default: a cache dir keyed by the archive's sha256).

    Raises:
        BundleError: not a tar archive, truncated, or containing unsafe members.
    """
    path = Path(archive)
    try:
        digest = sha256_file(path)
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
                for m in members:
                    if not m.isfile() or m.name.startswith("/") or ".." in Path(m.name).parts:
                        raise BundleError(f"bundle archive {path}: unsafe member {m.name!r}", hint="do not use it")
                for m in members:
                    src = tar.extractfile(m)
                    dst = tmp / m.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    with open(dst, "wb") as f:
                        shutil.copyfileobj(src, f)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"bundle archive {path} is corrupt or truncated ({exc})",
                              hint="copy the .edgead file again") from exc
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
