"""Write, load and update bundles. Every load verifies the format version and every hash.

Example:
    >>> b = load_bundle("runs/bracket.edgead")          # doctest: +SKIP
    >>> b.model_hash[:12], b.meta["model"]["type"]       # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Union

import yaml

from edgead.bundle.manifest import build_manifest, read_manifest, verify_manifest
from edgead.errors import BundleError
from edgead.infer.base import InputSpec

FORMAT_VERSION = 1
META = "edgead.yaml"
MANIFEST = "manifest.json"
ONNX = "model.onnx"
STATE = "state.npz"
REQUIRED_META = ("format_version", "model", "input", "thresholds", "normalisation")

FileSource = Union[bytes, str, os.PathLike]


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk.

    Attributes:
        root: the bundle directory (an archive is unpacked to a cache directory first).
        meta: the parsed ``edgead.yaml``.
        manifest: the parsed ``manifest.json``.
    """

    root: Path
    meta: dict
    manifest: dict

    @property
    def model_hash(self) -> str:
        """sha256 over the manifest: the identity used by records, engines and deploys."""
        return self.manifest["bundle_sha256"]

    @property
    def onnx_path(self) -> Path:
        return self.root / ONNX

    @property
    def state_path(self) -> Path | None:
        path = self.root / STATE
        return path if path.is_file() else None

    @property
    def input_spec(self) -> InputSpec:
        inp = self.meta["input"]
        return InputSpec(int(inp["height"]), int(inp["width"]), int(inp["channels"]))

    @property
    def model_type(self) -> str:
        return str(self.meta["model"]["type"])

    def file(self, name: str) -> Path:
        """Path of a file listed in the manifest; :class:`BundleError` if it is not listed."""
        if name not in self.manifest["files"]:
            raise BundleError(f"bundle {self.root}: has no {name}")
        return self.root / name


def _dump_yaml(meta: dict) -> str:
    return yaml.safe_dump(meta, sort_keys=False, default_flow_style=None, width=120)


def write_bundle(out_dir: str | os.PathLike, meta: dict, files: Mapping[str, FileSource]) -> Bundle:
    """Write a bundle atomically: files, ``edgead.yaml`` from ``meta``, then the manifest.

    Args:
        out_dir: target directory; replaced if it exists and is a bundle, refused if it is another non-empty dir.
        meta: the metadata (``format_version`` is set here).
        files: name -> bytes or path of a file to copy (at least ``model.onnx``).

    Returns:
        The loaded, verified :class:`Bundle`.

    Raises:
        BundleError: if ``out_dir`` is a non-empty directory that is not a bundle, or ``model.onnx`` is missing.
    """
    out = Path(out_dir)
    if ONNX not in files:
        raise BundleError(f"bundle {out}: no {ONNX} given", hint="export the model first")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise BundleError(f"{out} exists and is not a bundle", hint="choose an empty or new --out directory")
    meta = {"format_version": FORMAT_VERSION, **{k: v for k, v in meta.items() if k != "format_version"}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, src in files.items():
            dst = tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, bytes):
                dst.write_bytes(src)
            else:
                shutil.copyfile(src, dst)
        (tmp / META).write_text(_dump_yaml(meta))
        names = [p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()]
        manifest = build_manifest(tmp, names, FORMAT_VERSION)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync_tree(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(out)


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def load_bundle(path: str | os.PathLike, *, verify: bool = True) -> Bundle:
    """Load a bundle directory or ``.edgead`` archive, verifying format version and hashes.

    Args:
        path: bundle directory, or a single-file archive made by :func:`pack_bundle`.
        verify: check every sha256 (default); ``False`` only checks presence (for listings).

    Returns:
        The :class:`Bundle`.

    Raises:
        BundleError: missing, partial, tampered, or of another format version; the message names the file.
    """
    root = Path(path)
    if root.is_file():
        from edgead.bundle.archive import unpack_bundle

        root = unpack_bundle(root)
    if not root.exists():
        raise BundleError(f"bundle {root} does not exist", hint="pass the directory or .edgead file from `edgead train`")
    if not root.is_dir():
        raise BundleError(f"bundle {root} is neither a directory nor an .edgead archive")
    manifest = read_manifest(root / MANIFEST)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"bundle {root}: format version {version!r}, this edgead reads version {FORMAT_VERSION}",
            hint="re-export the bundle with this edgead version, or install the edgead that wrote it",
        )
    if verify:
        verify_manifest(root, manifest, MANIFEST)
    meta = _read_meta(root)
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"bundle {root}: {META} says format version {meta.get('format_version')!r}")
    return Bundle(root=root, meta=meta, manifest=manifest)


def _read_meta(root: Path) -> dict:
    try:
        meta = yaml.safe_load((root / META).read_text())
    except FileNotFoundError:
        raise BundleError(f"bundle {root}: {META} is missing") from None
    except yaml.YAMLError as exc:
        raise BundleError(f"bundle {root}: {META} is not valid YAML ({exc})") from exc
    if not isinstance(meta, dict):
        raise BundleError(f"bundle {root}: {META} is not a mapping")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise BundleError(f"bundle {root}: {META} lacks {', '.join(missing)}")
    return meta


def update_bundle(bundle: Bundle, meta: dict | None = None, files: Mapping[str, FileSource] | None = None,
                  out_dir: str | os.PathLike | None = None) -> Bundle:
    """Rewrite a bundle with new metadata and/or files (hashes recomputed), in place or to ``out_dir``.

    Args:
        bundle: the source bundle.
        meta: the full new metadata (default: unchanged).
        files: files to add or replace (default: none).
        out_dir: where to write (default: in place).

    Returns:
        The new verified bundle.
    """
    names = [n for n in bundle.manifest["files"] if n != META]
    merged: dict[str, FileSource] = {n: bundle.root / n for n in names}
    merged.update(files or {})
    target = Path(out_dir) if out_dir else bundle.root
    if target.resolve() == bundle.root.resolve():
        # Copy sources out first: the directory is replaced atomically.
        staged = Path(tempfile.mkdtemp(prefix=".edgead-stage-"))
        try:
            for name, src in list(merged.items()):
                if not isinstance(src, bytes):
                    dst = staged / name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dst)
                    merged[name] = dst
            return write_bundle(target, meta or bundle.meta, merged)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    return write_bundle(target, meta or bundle.meta, merged)
