"""Containment of bundle files: every name a manifest, an archive or a writer uses is a plain relative path that
stays inside the bundle, and no file or folder on the way is a symbolic link.

The name check is pure (:func:`check_name`); :func:`contained` also looks at the disk. Both raise
:class:`~edgead.errors.BundleError` naming the bundle and the name, so loading, ``pack``, ``threshold``, ``convert``
and ``update`` all refuse the same way before anything is read or written.

Example:
    >>> check_name("state.npz", "bundle b")
    'state.npz'
    >>> check_name("../etc/passwd", "bundle b")
    Traceback (most recent call last):
    ...
    edgead.errors.BundleError: bundle b: file name '../etc/passwd' escapes the bundle (it contains '..') (...)
"""
from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from edgead.errors import BundleError

MAX_NAME_CHARS = 255
HINT = "a bundle lists only plain relative file names inside it; do not use this bundle"


def check_name(name: str, where: str) -> str:
    """Refuse a bundle file name that is not a plain relative POSIX path inside the bundle.

    Args:
        name: the name as written in a manifest, an archive member or a writer's file table.
        where: what holds it, for the message (``"bundle runs/b"``).

    Returns:
        ``name`` unchanged.

    Raises:
        BundleError: empty, absolute, with ``..``, ``.``, a backslash, a NUL or a control character, or too long.
    """
    if not isinstance(name, str) or not name:
        raise BundleError(f"{where}: empty or non-text file name {name!r}", hint=HINT)
    why = None
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        why = "it is an absolute path"
    elif ".." in name.split("/"):
        why = "it contains '..'"
    elif "\\" in name:
        why = "it contains a backslash"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        why = "it contains a control character"
    elif len(name) > MAX_NAME_CHARS:
        why = f"it is longer than {MAX_NAME_CHARS} characters"
    elif "/".join(parts) != name or any(p in (".", "") for p in name.split("/")):
        why = "it is not a normalised path (empty, '.' or repeated '/' parts)"
    if why:
        raise BundleError(f"{where}: file name {name!r} escapes the bundle ({why})", hint=HINT)
    return name


def contained(root: Path, name: str, where: str, *, must_exist: bool = True) -> Path:
    """``root / name`` after checking the name and that no component below ``root`` is a symbolic link.

    Args:
        root: the bundle (or staging) directory; itself may be reached through links.
        name: a bundle file name.
        where: what holds it, for the message.
        must_exist: a missing file is an error here (False: only existing components are checked).

    Returns:
        The path.

    Raises:
        BundleError: a bad name, a symbolic link on the way, or (``must_exist``) a file that is not a regular file.
    """
    check_name(name, where)
    path = Path(root)
    for part in name.split("/"):
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if must_exist:
                raise BundleError(f"{where}: {name} is missing (partial copy?)",
                                  hint="copy the whole bundle again") from None
            return Path(root) / name
        if stat.S_ISLNK(st.st_mode):
            raise BundleError(f"{where}: {name} is (or passes through) a symbolic link, which could point outside "
                              f"the bundle", hint=HINT)
    if must_exist and not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{where}: {name} is not a regular file", hint=HINT)
    return path


def listed_files(root: Path) -> set[str]:
    """Every entry under ``root`` that is not a directory (regular files, links, devices), as relative names.

    Links are listed, never followed, so a link that the manifest does not name is reported as an extra file.
    """
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink():
                dirnames.remove(d)
                filenames.append(d)
        out.update((base / f).relative_to(root).as_posix() for f in filenames)
    return out
