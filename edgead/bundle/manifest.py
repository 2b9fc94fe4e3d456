"""sha256 manifests: one hash per file, and one hash over them all (the model hash)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping

from edgead.errors import BundleError

CHUNK = 1 << 20


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
    """Hash ``names`` under ``root`` into a manifest dict."""
    files = {name: sha256_file(root / name) for name in sorted(names)}
    return {"format_version": format_version, "files": files, "bundle_sha256": combined_hash(files)}


def verify_manifest(root: Path, manifest: dict, manifest_name: str) -> None:
    """Check that every listed file exists with its hash and that no file is unlisted.

    Raises:
        BundleError: naming the first missing, extra or altered file.
    """
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"bundle {root}: {manifest_name} lists no files", hint="re-export the bundle")
    for name, digest in sorted(files.items()):
        path = root / name
        if not path.is_file():
            raise BundleError(f"bundle {root}: {name} is missing (partial copy?)", hint="copy the whole bundle again")
        if sha256_file(path) != digest:
            raise BundleError(
                f"bundle {root}: {name} does not match its sha256 in {manifest_name} (tampered or truncated)",
                hint="use the original bundle; never edit bundle files by hand (use `edgead threshold`)",
            )
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    extra = sorted(present - set(files) - {manifest_name})
    if extra:
        raise BundleError(f"bundle {root}: files not in the manifest: {', '.join(extra)}", hint="remove them")
    if combined_hash(files) != manifest.get("bundle_sha256"):
        raise BundleError(f"bundle {root}: bundle_sha256 in {manifest_name} is wrong (tampered manifest)")


def read_manifest(path: Path) -> dict:
    """Parse ``manifest.json``; raise :class:`BundleError` if unreadable."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"bundle {path.parent}: {path.name} is missing", hint="is this an edgead bundle?") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"bundle {path.parent}: {path.name} is unreadable ({exc})") from exc
