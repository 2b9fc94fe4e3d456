"""Write, load and update bundles. Every load verifies the format version and every hash.

Example:
    >>> b = load_bundle("runs/bracket.edgead")          # doctest: +SKIP
    >>> b.model_hash[:12], b.meta.model.type, b.meta.input.color   # doctest: +SKIP
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

from edgead.bundle.arrays import caps_for, load_npz, summarise_npz
from edgead.bundle.manifest import build_manifest, read_manifest, verify_manifest
from edgead.bundle.paths import check_name, contained
from edgead.bundle.signing import SIGNATURE, KeySource, Signature, read_signature, sign_manifest
from edgead.contract.graph import InputSpec
from edgead.contract.meta import FORMAT_VERSION, META, BundleMeta
from edgead.contract.integrity import ArrayRecord
from edgead.errors import BundleError, OutputError, short_path, writing

MANIFEST = "manifest.json"
ONNX = "model.onnx"
STATE = "state.npz"
SIDECARS = (MANIFEST, SIGNATURE)
"""Files beside the listed ones: the manifest and its signature (neither lists the other)."""

FileSource = Union[bytes, str, os.PathLike]


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk.

    Attributes:
        root: the bundle directory (an archive is unpacked to a cache directory first).
        meta: the parsed and validated ``edgead.yaml``.
        manifest: the parsed ``manifest.json``.
    """

    root: Path
    meta: BundleMeta
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
        return self.meta.input.spec

    @property
    def model_type(self) -> str:
        return self.meta.model.type

    @property
    def signature(self) -> Signature | None:
        """The bundle's signature (not verified here: see :func:`edgead.bundle.trust.check_trust`), or None."""
        return read_signature(self.root)

    def file(self, name: str) -> Path:
        """Path of a file listed in the manifest; :class:`BundleError` if it is not listed or escapes the bundle."""
        if name not in self.manifest["files"]:
            raise BundleError(f"bundle {self.root}: has no {name}")
        return contained(self.root, name, f"bundle {self.root}")

    def load_arrays(self, name: str) -> dict:
        """The arrays of the bundle's ``.npz`` file ``name``, headers checked against the caps its metadata records
        before anything is allocated (:mod:`edgead.bundle.arrays`).

        Raises:
            BundleError: not listed, or a header above the caps or inconsistent.
        """
        return load_npz(self.file(name), caps_for(self.meta, name))


def sidecar_names(root: Path) -> list[str]:
    """The sidecars present in ``root`` (the manifest always; the signature when signed)."""
    return [n for n in SIDECARS if n == MANIFEST or os.path.lexists(root / n)]


def _dump_yaml(meta: dict) -> str:
    return yaml.safe_dump(meta, sort_keys=False, default_flow_style=None, width=120)


def write_bundle(out_dir: str | os.PathLike, meta: BundleMeta | Mapping, files: Mapping[str, FileSource],
                 sign_key: KeySource | None = None) -> Bundle:
    """Write a bundle atomically: files, ``edgead.yaml`` from ``meta``, the manifest, then its signature.

    Args:
        out_dir: target directory; replaced if it exists and is a bundle, refused if it is another non-empty dir.
        meta: the metadata, typed or as a mapping (parsed and validated like a loaded one; ``format_version`` and
            ``arrays``, the caps of every ``.npz`` file, are set here).
        files: name -> bytes or path of a file to copy (at least ``model.onnx``); names are plain relative paths.
        sign_key: an Ed25519 private key (or its file) to sign the manifest with; None: unsigned.

    Returns:
        The loaded, verified :class:`Bundle`.

    Raises:
        BundleError: if ``out_dir`` is a non-empty directory that is not a bundle, ``model.onnx`` is missing, a
            file name escapes the bundle, or the metadata is invalid.
        OutputError: if the disk is full.
    """
    out = Path(out_dir)
    for name in files:
        check_name(name, f"bundle {out}")
        if name in (META, *SIDECARS):
            raise BundleError(f"bundle {out}: {name} is written by edgead, not given as a file")
    if ONNX not in files:
        raise BundleError(f"bundle {out}: no {ONNX} given", hint="export the model first")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise BundleError(f"{short_path(out)} exists and is not a bundle",
                          hint="choose an empty or new --out directory")
    if not isinstance(meta, BundleMeta):
        meta = BundleMeta.from_dict(meta, where=f"bundle {out}: metadata")
    with writing(out, "bundle"):
        _write_files(out, meta, files, sign_key)
    return load_bundle(out)


def check_output(out: str | os.PathLike, *, force: bool = False, option: str = "--out") -> Path:
    """Refuse, before any work, an output that would overwrite something (nothing is overwritten silently).

    A bundle directory or a file at ``out`` is replaced only with ``force``; a non-empty directory that is not a
    bundle is never replaced. Call it before training or converting, so a refusal costs nothing.

    Args:
        out: the bundle directory (or ``.edgead`` archive) to be written.
        force: replace an existing bundle or file.
        option: the CLI option that named ``out``, for the message.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        OutputError: naming ``out``, what is there and what to do.
    """
    out = Path(out)
    if not os.path.lexists(out):
        return out
    if out.is_dir() and not (out / MANIFEST).exists():
        if any(out.iterdir()):
            raise OutputError(f"{option} {short_path(out)} is a directory that is not a bundle; edgead does not "
                              "replace it", hint=f"choose a new {option} (or empty that directory)")
        return out
    what = "a bundle" if out.is_dir() else "a file"
    if not force:
        raise OutputError(f"{option} {short_path(out)} exists ({what}); nothing was written",
                          hint=f"choose a new {option}, or add --force to replace it")
    return out


def _write_files(out: Path, meta: BundleMeta, files: Mapping[str, FileSource],
                 sign_key: KeySource | None) -> None:
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
        arrays = {name: ArrayRecord(**summarise_npz(tmp / name)) for name in sorted(files) if name.endswith(".npz")}
        (tmp / META).write_text(_dump_yaml(meta.replace(format_version=FORMAT_VERSION, arrays=arrays).to_dict()))
        manifest = build_manifest(tmp, [*files, META], FORMAT_VERSION)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if sign_key is not None:
            sign_manifest(tmp, sign_key, MANIFEST)
        _fsync_tree(tmp)
        if out.is_file() or out.is_symlink():  # replacing a file was allowed by the caller (check_output)
            out.unlink()
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

        unpacked = unpack_bundle(root)
        try:
            return load_bundle(unpacked, verify=verify)
        except BundleError:
            shutil.rmtree(unpacked, ignore_errors=True)  # never keep what failed verification in the cache
            raise
    if not root.exists():
        raise BundleError(f"bundle {root} does not exist", hint="pass the directory or .edgead file from `edgead train`")
    if not root.is_dir():
        raise BundleError(f"bundle {root} is neither a directory nor an .edgead archive")
    manifest = read_manifest(contained(root, MANIFEST, f"bundle {root}"))
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"bundle {root}: format version {version!r}, this edgead reads version {FORMAT_VERSION}",
            hint="re-export the bundle with this edgead version, or install the edgead that wrote it",
        )
    if verify:
        verify_manifest(root, manifest, SIDECARS)
    else:
        for name in manifest.get("files") or {}:
            check_name(name, f"bundle {root}")
    return Bundle(root=root, meta=read_meta(root), manifest=manifest)


def read_meta(root: Path) -> BundleMeta:
    """Parse and validate ``root/edgead.yaml`` (the only place it is read).

    Raises:
        BundleError: missing, not YAML, of another format version, or a section or key missing or invalid.
    """
    try:
        data = yaml.safe_load(contained(root, META, f"bundle {root}").read_text())
    except yaml.YAMLError as exc:
        raise BundleError(f"bundle {root}: {META} is not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise BundleError(f"bundle {root}: {META} is not a mapping")
    if data.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"bundle {root}: {META} says format version {data.get('format_version')!r}")
    return BundleMeta.from_dict(data, where=f"bundle {root}: {META}")


def update_bundle(bundle: Bundle, meta: BundleMeta | Mapping | None = None,
                  files: Mapping[str, FileSource] | None = None, out_dir: str | os.PathLike | None = None,
                  sign_key: KeySource | None = None) -> Bundle:
    """Rewrite a bundle with new metadata and/or files (hashes recomputed), in place or to ``out_dir``.

    The old signature never carries over (the manifest changes): the result is signed with ``sign_key``, or
    unsigned.

    Args:
        bundle: the source bundle.
        meta: the full new metadata (default: unchanged).
        files: files to add or replace (default: none).
        out_dir: where to write (default: in place).
        sign_key: the key to sign the result with (None: unsigned).

    Returns:
        The new verified bundle.
    """
    where = f"bundle {bundle.root}"
    names = [n for n in bundle.manifest["files"] if n != META]
    merged: dict[str, FileSource] = {n: contained(bundle.root, n, where) for n in names}
    merged.update(files or {})
    target = Path(out_dir) if out_dir else bundle.root
    new_meta = bundle.meta if meta is None else meta
    if target.resolve() != bundle.root.resolve():
        return write_bundle(target, new_meta, merged, sign_key)
    # Copy sources out first (the directory is replaced atomically), into a folder beside it: same file system,
    # never a shared temp dir, removed whatever happens.
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.stage-", dir=target.parent))
    try:
        for name, src in list(merged.items()):
            if not isinstance(src, bytes):
                dst = contained(staged, name, f"staging for {where}", must_exist=False)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                merged[name] = dst
        return write_bundle(target, new_meta, merged, sign_key)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
