"""Build a TensorRT engine from a converted contract graph, on the target (TensorRT 10 API, working on 11).

Precision comes from the graph: FP16 casts and Q/DQ nodes make it explicit, and such graphs are built with
``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` where it exists (always on 11). ``BuilderFlag.FP16`` is used only
on 10.x and only for a plain FP32 graph built as FP16. Never an implicit INT8 calibrator (gone in 11).
The timing cache is kept next to the engine so rebuilds are fast. The engine lives beside its bundle, never inside
it: its header names the ``bundle_sha256`` of the bundle it was compiled from.
"""
from __future__ import annotations

import os
from pathlib import Path

from edgead import __version__
from edgead.contract.graph import INPUT
from edgead.convert.onnx_wire import has_explicit_precision
from edgead.convert.targets import Precision, Target
from edgead.errors import EngineError, lazy_import
from edgead.infer import BackendKind
from edgead.infer.cuda_mem import device_info
from edgead.infer.engine_file import EngineHeader, write_engine_file


def trtexec_command(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, target: Target,
                    channels: int) -> str:
    """The equivalent ``trtexec`` command line (10.x/11.x flags; precision comes from the graph).

    Note that trtexec writes a bare engine: ``edgead`` refuses it until it gets a header (build with edgead).
    """
    n, (h0, w0), (h1, w1), (h2, w2) = target.batch_size, target.min_input_hw, target.opt_input_hw, target.max_input_hw
    parts = [
        "trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
        f"--memPoolSize=workspace:{target.workspace_mib}M",
        f"--minShapes={INPUT}:1x{h0}x{w0}x{channels}", f"--optShapes={INPUT}:{n}x{h1}x{w1}x{channels}",
        f"--maxShapes={INPUT}:{n}x{h2}x{w2}x{channels}", "--stronglyTyped",
        f"--timingCacheFile={Path(str(engine_path)).with_suffix('.timing.cache')}",
    ]
    if target.dla is not None:
        parts += [f"--useDLACore={target.dla.core}"] + (["--allowGPUFallback"] if target.dla.gpu_fallback else [])
    return " ".join(parts)


def _network(trt, builder, explicit: bool):
    flags = 0
    typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if explicit and typed is not None:
        flags |= 1 << int(typed)
    return builder.create_network(flags), bool(flags)


def _parse(trt, network, logger, onnx_path: Path) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = []
        for i in range(parser.num_errors):
            err = parser.get_error(i)
            errors.append(f"node {err.node()} ({err.node_name() if hasattr(err, 'node_name') else '?'}): "
                          f"{err.desc()}")
        raise EngineError(f"TensorRT cannot parse {onnx_path}: " + "; ".join(errors or ["unknown error"]),
                          hint="check the opset (17) and the ops; try polygraphy inspect model")


def compile_engine(onnx_path: str | os.PathLike, target: Target, precision: Precision, channels: int, *,
                   cache_path: str | os.PathLike) -> bytes:
    """Compile a contract graph into serialized TensorRT engine bytes (no header yet).

    Args:
        onnx_path: the converted graph (FP32, FP16 casts, or Q/DQ INT8).
        target: the target profile (workspace, shapes, DLA).
        precision: the precision of the graph (FP16 on a plain FP32 graph sets ``BuilderFlag.FP16``).
        channels: input channels.
        cache_path: the timing cache file (read when present, written after the build).

    Returns:
        The serialized engine.

    Raises:
        MissingExtraError: TensorRT is not installed (build on the target, extra ``trt``).
        EngineError: parse errors (per node), a build failure, or FP16 requested where TensorRT cannot do it.
    """
    trt = lazy_import("tensorrt", feature="building a TensorRT engine")
    onnx_path, cache_path = Path(onnx_path), Path(cache_path)
    explicit = has_explicit_precision(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, typed = _network(trt, builder, explicit)
    _parse(trt, network, logger, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, target.workspace_mib << 20)
    if precision is Precision.FP16 and not explicit:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise EngineError("TensorRT %s has no BuilderFlag.FP16 (strongly typed only)" % trt.__version__,
                              hint="convert the graph to FP16 first: edgead convert --precision fp16")
        config.set_flag(trt.BuilderFlag.FP16)
    if target.dla is not None and precision is not Precision.FP32:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = target.dla.core
        if target.dla.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    c = channels
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT, (1, *target.min_input_hw, c), (target.batch_size, *target.opt_input_hw, c),
                      (target.batch_size, *target.max_input_hw, c))
    config.add_optimization_profile(profile)
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build {onnx_path} for {target.name} ({precision.value}, "
                          f"strongly typed={typed})", hint="see the TensorRT log above; try a larger workspace_mib")
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def engine_header(target: Target, precision: Precision, *, model_hash: str, input_hw: tuple[int, int],
                  channels: int, bundle_format_version: int, device: int = 0) -> EngineHeader:
    """The header of an engine compiled here (TensorRT version, GPU name and compute capability of this machine).

    Raises:
        MissingExtraError: TensorRT or the CUDA binding is not installed.
    """
    trt = lazy_import("tensorrt", feature="building a TensorRT engine")
    gpu, cc = device_info(device)
    return EngineHeader(tensorrt_version=trt.__version__, gpu_name=gpu, compute_capability=cc,
                        model_hash=model_hash, bundle_format_version=int(bundle_format_version),
                        precision=precision.value, target=target.name, edgead_version=__version__,
                        input_height=int(input_hw[0]), input_width=int(input_hw[1]), channels=int(channels))


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, target: Target,
                 precision: Precision, *, model_hash: str, input_hw: tuple[int, int], channels: int,
                 bundle_format_version: int = 1, device: int = 0) -> Path:
    """Build and write an edgead engine file (header + engine) for ``target``.

    Args:
        onnx_path: the converted graph (FP32, FP16 casts, or Q/DQ INT8).
        engine_path: where to write the engine file; the timing cache goes beside it.
        target: the target profile (workspace, shapes, DLA).
        precision: the precision of the graph (recorded; FP16 on a plain FP32 graph sets ``BuilderFlag.FP16``).
        model_hash: ``bundle_sha256`` of the bundle ``onnx_path`` belongs to (the station checks it against the
            bundle it runs: :func:`edgead.infer.engine_file.check_built_from`).
        input_hw: the model resolution (recorded).
        channels: input channels.
        bundle_format_version: that bundle's format version (recorded).
        device: CUDA device (its name and compute capability go in the header).

    Returns:
        The engine file path.

    Raises:
        MissingExtraError: TensorRT is not installed (build on the target, extra ``trt``).
        EngineError: parse errors (per node), a build failure, or FP16 requested where TensorRT cannot do it.
    """
    engine_path = Path(engine_path)
    blob = compile_engine(onnx_path, target, precision, channels, cache_path=engine_path.with_suffix(".timing.cache"))
    header = engine_header(target, precision, model_hash=model_hash, input_hw=input_hw, channels=channels,
                           bundle_format_version=bundle_format_version, device=device)
    return write_engine_file(engine_path, header, blob)


def build_bundle_engine(bundle, engine_path: str | os.PathLike, target: Target, *, device: int = 0) -> Path:
    """Build the engine of a (converted) bundle: its graph, precision, hash, format version and input spec.

    Args:
        bundle: the :class:`~edgead.bundle.Bundle` (precision from ``conversion.precision``, FP32 without one).
        engine_path: where to write the engine file.
        target: the target profile.
        device: CUDA device.

    Returns:
        The engine file path.

    Raises:
        MissingExtraError, EngineError: as :func:`build_engine`; also a target that runs no TensorRT, or one that
            does not allow the bundle's precision.
    """
    precision = bundle.meta.precision
    if target.backend is not BackendKind.TENSORRT:
        raise EngineError(f"target {target.name} runs {target.backend.value}, not TensorRT: there is no engine to "
                          "build", hint="run the bundle as it is there, or pick a tensorrt target (edgead targets)")
    if precision not in target.precisions:
        allowed = ", ".join(p.value for p in target.precisions)
        raise EngineError(f"bundle {bundle.root} is {precision.value}; target {target.name} allows {allowed}",
                          hint=f"convert it for this target: edgead convert --target {target.name} --precision ...")
    spec = bundle.input_spec
    return build_engine(bundle.onnx_path, engine_path, target, precision, model_hash=bundle.model_hash,
                        input_hw=(spec.height, spec.width), channels=spec.channels,
                        bundle_format_version=bundle.meta.format_version, device=device)


def default_engine_path(bundle_root: str | os.PathLike) -> Path:
    """Where an engine goes by default: beside the bundle (``BUNDLE/../model.engine``), never inside it.

    An engine inside the bundle would change the bundle's hash, which the engine's header must name.
    """
    return Path(bundle_root).parent / "model.engine"


def tensorrt_available() -> bool:
    """True when TensorRT and a CUDA binding import here (the engine can be built on this machine)."""
    try:
        lazy_import("tensorrt", feature="TensorRT")
        device_info(0)
    except Exception:  # no TensorRT, no binding, or no GPU: all mean "build on the target"
        return False
    return True
