"""The edgead engine file: a JSON header in front of the TensorRT engine bytes, checked before deserializing.

Layout: ``MAGIC`` (8 bytes) + header length (uint32, little endian) + UTF-8 JSON header + engine bytes. An engine is
valid only for the exact TensorRT version and GPU it was built on, so reading checks both against the running
station and fails with both values and the command that fixes it. An engine also belongs to exactly one bundle:
the header's ``model_hash`` is the ``bundle_sha256`` of the bundle whose ``model.onnx`` it was compiled from (with
that bundle's format version), and :func:`check_built_from` refuses to run it with any other bundle (a retrained
bundle, changed thresholds: the normalisation lives inside the graph, so the engine must be rebuilt). Pure Python:
no TensorRT needed here.

Example:
    >>> header, engine = read_engine_file("model.engine")                          # doctest: +SKIP
    >>> check_compatible(header, tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7")  # doctest: +SKIP
    >>> check_built_from(header, model_hash=bundle.model_hash, bundle_format_version=1)            # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from edgead.errors import EngineError

MAGIC = b"EDGEADE\x01"
HEADER_LEN = struct.Struct("<I")
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class EngineHeader:
    """What an engine was built for and from.

    Attributes:
        tensorrt_version: ``tensorrt.__version__`` at build time.
        gpu_name: the CUDA device name at build time.
        compute_capability: ``"major.minor"`` of that GPU.
        model_hash: ``bundle_sha256`` of the bundle whose ``model.onnx`` the engine was compiled from (for
            ``edgead convert``: the converted bundle it writes, never the FP32 source).
        bundle_format_version: that bundle's format version.
        precision: ``fp32`` | ``fp16`` | ``int8``.
        target: the target profile name.
        edgead_version: the edgead that built it.
        input_height, input_width, channels: the model input (``InputSpec``).
    """

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    model_hash: str
    bundle_format_version: int
    precision: str
    target: str
    edgead_version: str
    input_height: int
    input_width: int
    channels: int

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> "EngineHeader":
        try:
            raw = json.loads(data.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EngineError(f"{where}: engine header is not valid JSON ({exc})",
                              hint="rebuild the engine: edgead build-engine") from exc
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in raw]
        if not isinstance(raw, dict) or missing:
            raise EngineError(f"{where}: engine header lacks {missing}", hint="rebuild the engine: edgead build-engine")
        return cls(**{n: raw[n] for n in names})


def pack_engine(header: EngineHeader, engine: bytes) -> bytes:
    """The file contents for ``engine`` with ``header`` in front."""
    blob = header.to_json()
    return MAGIC + HEADER_LEN.pack(len(blob)) + blob + bytes(engine)


def write_engine_file(path: str | os.PathLike, header: EngineHeader, engine: bytes) -> Path:
    """Write an engine file atomically (temporary file + rename).

    Returns:
        The written path.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(pack_engine(header, engine))
    os.replace(tmp, out)
    return out


def unpack_engine(data: bytes, *, where: str = "<bytes>") -> tuple[EngineHeader, bytes]:
    """Split file contents into header and engine bytes.

    Raises:
        EngineError: not an edgead engine file (e.g. a bare trtexec engine), or truncated.
    """
    if data[:len(MAGIC)] != MAGIC:
        raise EngineError(f"{where} is not an edgead engine file (no {MAGIC!r} header; a bare trtexec engine?)",
                          hint="build it with: edgead build-engine")
    start = len(MAGIC) + HEADER_LEN.size
    if len(data) < start:
        raise EngineError(f"{where}: engine file truncated", hint="rebuild the engine: edgead build-engine")
    (length,) = HEADER_LEN.unpack_from(data, len(MAGIC))
    if length > MAX_HEADER_BYTES or len(data) < start + length:
        raise EngineError(f"{where}: engine header length {length} is corrupt or truncated",
                          hint="rebuild the engine: edgead build-engine")
    header = EngineHeader.from_json(data[start:start + length], where=where)
    engine = data[start + length:]
    if not engine:
        raise EngineError(f"{where}: engine file has a header but no engine", hint="rebuild the engine")
    return header, engine


def read_engine_header(path: str | os.PathLike) -> EngineHeader:
    """Read only the header of an engine file (cheap: the engine bytes are not loaded).

    Raises:
        EngineError: missing, not an edgead engine, truncated or with a corrupt header.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + HEADER_LEN.size)
            if head[:len(MAGIC)] == MAGIC and len(head) == len(MAGIC) + HEADER_LEN.size:
                (length,) = HEADER_LEN.unpack_from(head, len(MAGIC))
                head += f.read(min(length, MAX_HEADER_BYTES + 1) + 1)  # +1: "no engine" is detected too
    except OSError as exc:
        raise EngineError(f"engine {path} cannot be read: {exc.strerror or exc}") from exc
    return unpack_engine(head, where=str(path))[0]


def read_engine_file(path: str | os.PathLike) -> tuple[EngineHeader, bytes]:
    """Read an engine file.

    Raises:
        EngineError: missing, not an edgead engine, truncated or with a corrupt header.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise EngineError(f"engine {path} cannot be read: {exc.strerror or exc}") from exc
    return unpack_engine(data, where=str(path))


def check_compatible(header: EngineHeader, *, tensorrt_version: str, gpu_name: str, compute_capability: str,
                     where: str = "engine", bundle: str = "BUNDLE") -> None:
    """Refuse an engine built for another TensorRT version or GPU.

    Args:
        header: the engine's header.
        tensorrt_version: the running ``tensorrt.__version__``.
        gpu_name: the running CUDA device name.
        compute_capability: the running device's ``"major.minor"``.
        where: the engine path, for the message.
        bundle: the bundle path, for the rebuild command in the hint.

    Raises:
        EngineError: with both values and "rebuild the engine on this station: edgead build-engine ...".
    """
    rebuild = f"rebuild the engine on this station: edgead build-engine --bundle {bundle} --target {header.target}"
    if header.tensorrt_version != tensorrt_version:
        raise EngineError(f"{where} was built with TensorRT {header.tensorrt_version}, this station runs TensorRT "
                          f"{tensorrt_version}", hint=rebuild)
    if header.compute_capability != compute_capability or header.gpu_name != gpu_name:
        raise EngineError(f"{where} was built for GPU {header.gpu_name!r} (compute capability "
                          f"{header.compute_capability}), this station has {gpu_name!r} (compute capability "
                          f"{compute_capability})", hint=rebuild)


def check_built_from(header: EngineHeader, *, model_hash: str, bundle_format_version: int, bundle: str = "BUNDLE",
                     where: str = "engine") -> None:
    """Refuse an engine compiled from another bundle than the one the station runs.

    Args:
        header: the engine's header.
        model_hash: ``bundle_sha256`` of the bundle the station loaded (``Bundle.model_hash``).
        bundle_format_version: that bundle's format version.
        bundle: the bundle path, for the rebuild command in the hint.
        where: the engine path, for the message.

    Raises:
        EngineError: naming both hashes (or versions) and "rebuild: edgead build-engine --bundle ... --target ...".

    Example:
        >>> check_built_from(header, model_hash="ab" * 32, bundle_format_version=1)   # doctest: +SKIP
    """
    rebuild = f"rebuild it from this bundle: edgead build-engine --bundle {bundle} --target {header.target}"
    if header.model_hash != model_hash:
        raise EngineError(f"{where} was built from bundle {header.model_hash[:12]}, the station runs bundle "
                          f"{model_hash[:12]} ({bundle})", hint=rebuild)
    if int(header.bundle_format_version) != int(bundle_format_version):
        raise EngineError(f"{where} was built from a format-{header.bundle_format_version} bundle, {bundle} is "
                          f"format {bundle_format_version}", hint=rebuild)
