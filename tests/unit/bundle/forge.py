"""What an attacker with write access to a bundle can do: edit a file, recompute the sha256 manifest, and sign it
with a key of their own; and the parts of a minimal bundle. Used by the bundle, trust and deploy tests."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import yaml

from edgead.bundle.manifest import combined_hash, sha256_file
from edgead.bundle.signing import SIGNATURE, generate_key, sign_manifest


MINIMAL_META = {"model": {"type": "patchcore", "params": {}}, "input": {"height": 8, "width": 8, "channels": 3},
                "thresholds": {"image": 1.0, "pixel": 2.0, "method": "frr"},
                "normalisation": {"image_lo": 0.1, "pixel_lo": 0.2}}
"""The metadata of a minimal bundle (no real graph: for the format, containment and trust tests)."""


def npz_bytes(**arrays) -> bytes:
    """An ``.npz`` file's bytes (default: one small float32 array)."""
    buf = io.BytesIO()
    np.savez(buf, **(arrays or {"w": np.zeros(4, np.float32)}))
    return buf.getvalue()


def minimal_files() -> dict:
    """``model.onnx`` (placeholder bytes) and ``state.npz`` of a minimal bundle."""
    return {"model.onnx": b"onnx", "state.npz": npz_bytes()}


def rehash(root: Path) -> None:
    """Recompute manifest.json over the files it lists, following links as an attacker's script would (the
    signature, if any, is left as it was)."""
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"] = {name: sha256_file(root / name) if (root / name).exists() else digest
                         for name, digest in manifest["files"].items()}
    manifest["bundle_sha256"] = combined_hash(manifest["files"])
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def tampered_copy(src: Path, dst: Path, *, image_threshold: float = 1e9) -> Path:
    """A copy whose image threshold accepts everything, with a recomputed manifest and no signature."""
    shutil.copytree(src, dst)
    meta = yaml.safe_load((dst / "edgead.yaml").read_text())
    meta["thresholds"]["image"] = image_threshold
    (dst / "edgead.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (dst / SIGNATURE).unlink(missing_ok=True)
    rehash(dst)
    return dst


def resigned_copy(src: Path, dst: Path):
    """:func:`tampered_copy`, signed by a fresh key no station trusts; returns (path, the attacker's key)."""
    tampered_copy(src, dst)
    key = generate_key("attacker")
    sign_manifest(dst, key)
    return dst, key
