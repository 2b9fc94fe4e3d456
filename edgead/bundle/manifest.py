"""sha256 manifests: one hash per file, and one hash over them all (the model hash)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping

from edgead.bundle.paths import check_name, contained, listed_files
from edgead.errors import BundleError

CHUNK = 1 << 20
HINT_REEXPORT = "re-export the bundle with edgead"


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def combined_hash(files: Mapping[str, str]) -> str:
    """Hash over the sorted ``name:sha256`` lines: the bundle's identity (the *model hash*)."""
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def build_manifest(root: Path, names: list[str], format_version: int) -> dict:
    """Hash ``names`` under ``root`` into a manifest dict (every name checked: relative, inside, no link)."""
    files = {name: sha256_file(contained(root, name, f"bundle {root}")) for name in sorted(names)}
    return {"format_version": format_version, "files": files, "bundle_sha256": combined_hash(files)}


def verify_manifest(root: Path, manifest: dict, sidecars: tuple[str, ...]) -> None:
    """Check that every listed file is contained, exists with its hash, and that no file is unlisted.

    Args:
        root: the bundle directory.
        manifest: the parsed manifest.
        sidecars: files beside the manifest that it does not list (the manifest itself, its signature).

    Raises:
        BundleError: naming the first escaping, missing, extra or altered file.
    """
    where = f"bundle {root}"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{where}: {sidecars[0]} lists no files", hint="re-export the bundle")
    for name in files:  # every name first: nothing is opened before all of them are known to be inside
        check_name(name, where)
        if name in sidecars:
            raise BundleError(f"{where}: {sidecars[0]} lists {name}, which is not a model file", hint=HINT_REEXPORT)
    for name, digest in sorted(files.items()):
        path = contained(root, name, where)
        if sha256_file(path) != digest:
            raise BundleError(
                f"{where}: {name} does not match its sha256 in {sidecars[0]} (tampered or truncated)",
                hint="use the original bundle; never edit bundle files by hand (use `edgead threshold`)",
            )
    extra = sorted(listed_files(root) - set(files) - set(sidecars))
    if extra:
        raise BundleError(f"{where}: files not in the manifest: {', '.join(extra)}", hint="remove them")
    if combined_hash(files) != manifest.get("bundle_sha256"):
        raise BundleError(f"{where}: bundle_sha256 in {sidecars[0]} is wrong (tampered manifest)")


def read_manifest(path: Path) -> dict:
    """Parse ``manifest.json``; raise :class:`BundleError` if unreadable."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"bundle {path.parent}: {path.name} is missing", hint="is this an edgead bundle?") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"bundle {path.parent}: {path.name} is unreadable ({exc})") from exc
