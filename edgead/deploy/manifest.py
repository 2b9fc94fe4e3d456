"""The release manifest: sha256 of every file of a release, plus what the station needs to know about it.

Stdlib only: this module also runs **on the station** (shipped in the release's ``tools/``), before any venv
exists. It is written on the build host and verified on the station before anything is installed or switched.

Example:
    >>> m = build_manifest("/tmp/rel", info={"release": "20261122T080000.000000Z"})   # doctest: +SKIP
    >>> write_manifest("/tmp/rel", m); verify_release("/tmp/rel")                     # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# Top-level entries created on the station after verification: never in the manifest, never checked.
STATION_MADE = ("venv", "FAILED", "engine", "SELFTEST.json", MANIFEST_NAME)


class ManifestMismatch(Exception):
    """A release on disk does not match its manifest (names the file)."""


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks.

    Args:
        path: the file.
        chunk_bytes: read size.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(root: str | os.PathLike) -> dict[str, str]:
    """Every regular file under ``root`` (minus :data:`STATION_MADE`) mapped to its sha256.

    Args:
        root: the release directory.

    Returns:
        ``{"relative/posix/path": sha256}``, sorted by path.
    """
    root = Path(root)
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in STATION_MADE or "__pycache__" in rel.parts or not path.is_file():
            continue
        files[rel.as_posix()] = sha256_file(path)
    return files


def build_manifest(root: str | os.PathLike, *, info: dict) -> dict:
    """The manifest of a release directory.

    Args:
        root: the release directory (complete: every file to ship is already there).
        info: release facts to record (release name, model hash, edgead version, created time, self-test, ...).

    Returns:
        ``{"format_version": 1, **info, "files": {...}}``.
    """
    return {"format_version": FORMAT_VERSION, **info, "files": list_files(root)}


def write_manifest(root: str | os.PathLike, manifest: dict) -> Path:
    """Write ``manifest.json`` into ``root`` and return its path."""
    path = Path(root) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(root: str | os.PathLike) -> dict:
    """Parse ``root/manifest.json``.

    Raises:
        ManifestMismatch: if it is missing, not JSON, or of another format version.
    """
    path = Path(root) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ManifestMismatch(f"release {root}: no {MANIFEST_NAME}") from exc
    except ValueError as exc:
        raise ManifestMismatch(f"release {root}: {MANIFEST_NAME} is not JSON ({exc})") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ManifestMismatch(f"release {root}: manifest format_version {manifest.get('format_version')!r}, "
                               f"this tool reads {FORMAT_VERSION}")
    return manifest


def compare_files(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Differences between two ``{path: sha256}`` tables, one readable line each (empty: identical).

    Args:
        expected: from the manifest.
        actual: from the disk.

    Returns:
        Lines such as ``"bundle/model.onnx: sha256 differs"``.
    """
    problems = [f"{name}: missing" for name in sorted(set(expected) - set(actual))]
    problems += [f"{name}: not in the manifest" for name in sorted(set(actual) - set(expected))]
    problems += [f"{name}: sha256 differs" for name in sorted(set(expected) & set(actual))
                 if expected[name] != actual[name]]
    return problems


def verify_release(root: str | os.PathLike) -> dict:
    """Check every file of a release against its manifest.

    Args:
        root: the release directory.

    Returns:
        The manifest.

    Raises:
        ManifestMismatch: naming every missing, extra or changed file.
    """
    manifest = read_manifest(root)
    problems = compare_files(manifest["files"], list_files(root))
    if problems:
        raise ManifestMismatch(f"release {root} does not match its manifest: " + "; ".join(problems))
    return manifest
