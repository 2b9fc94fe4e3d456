"""Build a TensorRT engine from a converted contract graph, on the target (TensorRT 10 API, working on 11).

Precision comes from the graph: FP16 casts and Q/DQ nodes make it explicit, and such graphs are built with
``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` where it exists (always on 11). ``BuilderFlag.FP16`` is used only
on 10.x and only for a plain FP32 graph built as FP16. Never an implicit INT8 calibrator (gone in 11).
The timing cache is kept next to the engine so rebuilds are fast.
"""
from __future__ import annotations

import os
from pathlib import Path

from edgead import __version__
from edgead.convert.targets import Precision, Target
from edgead.errors import EngineError, lazy_import
from edgead.infer.cuda_mem import device_info
from edgead.infer.engine_file import EngineHeader, write_engine_file

INPUT = "image"


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


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, target: Target,
                 precision: Precision, *, model_hash: str, input_hw: tuple[int, int], channels: int,
                 bundle_format_version: int = 1, device: int = 0) -> Path:
    """Build and write an edgead engine file (header + engine) for ``target``.

    Args:
        onnx_path: the converted graph (FP32, FP16 casts, or Q/DQ INT8).
        engine_path: where to write the engine file; the timing cache goes beside it.
        target: the target profile (workspace, shapes, DLA).
        precision: the precision of the graph (recorded; FP16 on a plain FP32 graph sets ``BuilderFlag.FP16``).
        model_hash: the source bundle hash (recorded in the header).
        input_hw: the model resolution (recorded).
        channels: input channels.
        bundle_format_version: recorded in the header.
        device: CUDA device (its name and compute capability go in the header).

    Returns:
        The engine file path.

    Raises:
        MissingExtraError: TensorRT is not installed (build on the target, extra ``trt``).
        EngineError: parse errors (per node), a build failure, or FP16 requested where TensorRT cannot do it.
    """
    trt = lazy_import("tensorrt", feature="building a TensorRT engine", extra="trt")
    import onnx

    from edgead.convert.graph import has_explicit_precision

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    explicit = has_explicit_precision(onnx.load(str(onnx_path), load_external_data=False))
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
    cache_path = engine_path.with_suffix(".timing.cache")
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build {onnx_path} for {target.name} ({precision.value}, "
                          f"strongly typed={typed})", hint="see the TensorRT log above; try a larger workspace_mib")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    gpu, cc = device_info(device)
    header = EngineHeader(tensorrt_version=trt.__version__, gpu_name=gpu, compute_capability=cc,
                          model_hash=model_hash, bundle_format_version=bundle_format_version,
                          precision=precision.value, target=target.name, edgead_version=__version__,
                          input_height=int(input_hw[0]), input_width=int(input_hw[1]), channels=int(channels))
    return write_engine_file(engine_path, header, bytes(serialized))


def tensorrt_available() -> bool:
    """True when TensorRT and a CUDA binding import here (the engine can be built on this machine)."""
    try:
        lazy_import("tensorrt", feature="TensorRT", extra="trt")
        device_info(0)
    except Exception:  # no TensorRT, no binding, or no GPU: all mean "build on the target"
        return False
    return True
