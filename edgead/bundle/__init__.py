"""The model bundle: a versioned, hashed directory (or single-file archive) that carries its own contract.

See docs/bundle-format.md. Runtime side: no torch, no pickles.
"""
from edgead.bundle.archive import pack_bundle, unpack_bundle
from edgead.bundle.core import (
    FORMAT_VERSION,
    MANIFEST,
    META,
    ONNX,
    STATE,
    Bundle,
    check_output,
    load_bundle,
    update_bundle,
    write_bundle,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "META",
    "ONNX",
    "STATE",
    "Bundle",
    "check_output",
    "load_bundle",
    "pack_bundle",
    "unpack_bundle",
    "update_bundle",
    "write_bundle",
]
