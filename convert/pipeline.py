"""``edgead convert``: bundle -> converted bundle for one target (FP32 / FP16 / INT8 / auto), gated.

:func:`convert` is a short pipeline of named steps over one :class:`ConvertOptions` (its fields map 1:1 to the CLI
flags ``--precision --calib --calib-method --int8-scope --int8-correction --guard-band --check --tolerance-pt
--pixel-tolerance-pt --max-new-reject-pct --confidence --max-extra-escape-pct --max-extra-false-reject-pct
--max-defect-score-fall --force --latency-runs``):

1. :func:`plan_conversion`: the candidates to build for the target and precision;
2. :func:`load_image_sets`: the calibration and check sets, and the FP32 graph's outputs on them;
3. :func:`build_candidates`: each candidate's graph, gate report and latency on this machine;
4. :func:`choose`: the requested candidate (gated), or with ``auto`` the fastest that passes;
5. :func:`compile_here`: the TensorRT engine, when the target runs TensorRT and this machine has it;
6. :func:`write_converted`: the converted bundle, its report, and the engine beside it.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgead.bundle import MANIFEST, META, ONNX, Bundle, load_bundle, write_bundle
from edgead.bundle.signing import KeySource
from edgead.calibration.correction import Int8Correction
from edgead.calibration.quantize import CalibMethod, Int8Scope, Int8Settings
from edgead.contract.graph import Prediction
from edgead.contract.meta import Conversion
from edgead.contract.thresholds import Calibration
from edgead.convert.candidates import (Job, TransferSet, build_candidate, candidate_jobs, open_candidate,
                                       sample_images, transfer_images)
from edgead.convert.evidence import (DEFAULT_MAX_DEFECT_SCORE_FALL, DEFAULT_MAX_EXTRA_ESCAPE_PCT,
                                     DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT)
from edgead.convert.gate import (DEFAULT_MAX_NEW_REJECT_PCT, DEFAULT_PIXEL_TOLERANCE_PT, DEFAULT_TOLERANCE_PT,
                                 CheckSet, enforce, load_check_set, measure_latencies, predict, run_gate)
from edgead.convert.report import Candidate, ConversionReport
from edgead.convert.targets import Precision, Target, get_target
from edgead.convert.transfer import GuardBand
from edgead.errors import ConfigError, GateError
from edgead.infer import BackendKind
from edgead.metrics.bounds import DEFAULT_CONFIDENCE
from edgead.progress import progress

ENGINE = "model.engine"
"""The engine's default file name, beside the converted bundle (``OUT/../model.engine``), never inside it."""
REPORT_JSON, REPORT_MD = "conversion-report.json", "conversion-report.md"


def _enum(kind, value, what: str):
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"unknown {what} {value!r}", hint=f"use one of {[k.value for k in kind]}") from None


@dataclass(frozen=True)
class ConvertOptions:
    """How to convert (the CLI flags of ``edgead convert``, 1:1). Strings are parsed into their enums.

    Attributes:
        precision: ``fp32`` | ``fp16`` | ``int8`` | ``auto`` (try the target's precisions, keep the fastest that
            passes the gate; needs ``check``). For ONNX Runtime targets ``auto`` also tries the CPU recipes of
            :data:`edgead.convert.recipes.CPU_RECIPES` (exact graph rewrites, bank reduction, INT8 on top).
        calib: folder (or ``.txt`` list) of good images; required for INT8.
        calib_method: ``minmax`` | ``entropy`` | ``percentile``.
        int8_scope: ``backbone`` | ``stride8`` (:class:`~edgead.calibration.quantize.Int8Scope`). ``auto`` with the
            default ``backbone`` also tries ``stride8`` as the candidate ``int8+stride8``.
        int8_correction: ``feature-mean`` | ``none`` (:class:`~edgead.calibration.correction.Int8Correction`).
        guard_band: ``shortfall`` | ``none``: lower a lossy candidate's thresholds by its measured shortfall on the
            good calibration images (:class:`~edgead.convert.transfer.GuardBand`).
        check: MVTec-layout folder with a labelled test split: the accuracy gate runs when given.
        tolerance_pt: largest image-AUROC drop (points).
        pixel_tolerance_pt: largest pixel-AUROC drop (points).
        max_new_reject_pct: largest share of the check set's good images (percent) that FP32 accepts and the
            candidate may reject.
        confidence: of the upper bounds on a lossy candidate's extra escape and false-reject rates
            (:mod:`edgead.convert.evidence`).
        max_extra_escape_pct: the allowance (percent of the defective images FP32 rejects) that the extra escape
            rate's upper bound must be below; with none accepted, it takes ``3 / allowance`` such images.
        max_extra_false_reject_pct: the same for the good images FP32 accepts that the candidate rejects.
        max_defect_score_fall: the largest fall of a defect's normalised score (0.5 = threshold) below FP32's.
        force: write the artifact even when the gate fails (recorded in the report).
        latency_runs: timed runs per candidate on this machine.
        show_progress: report each candidate as it is built and gated (:mod:`edgead.progress`; the CLI does
            unless ``--quiet``).
        sign_key: Ed25519 private key (or its file) to sign the converted bundle with (None: unsigned).

    Raises:
        ConfigError: an unknown precision, calibration method, scope, correction or guard band.
    """

    precision: Precision = Precision.FP32
    calib: str | os.PathLike | None = None
    calib_method: CalibMethod = CalibMethod.MINMAX
    int8_scope: Int8Scope = Int8Scope.BACKBONE
    int8_correction: Int8Correction = Int8Correction.FEATURE_MEAN
    guard_band: GuardBand = GuardBand.SHORTFALL
    check: str | os.PathLike | None = None
    tolerance_pt: float = DEFAULT_TOLERANCE_PT
    pixel_tolerance_pt: float = DEFAULT_PIXEL_TOLERANCE_PT
    max_new_reject_pct: float = DEFAULT_MAX_NEW_REJECT_PCT
    confidence: float = DEFAULT_CONFIDENCE
    max_extra_escape_pct: float = DEFAULT_MAX_EXTRA_ESCAPE_PCT
    max_extra_false_reject_pct: float = DEFAULT_MAX_EXTRA_FALSE_REJECT_PCT
    max_defect_score_fall: float = DEFAULT_MAX_DEFECT_SCORE_FALL
    force: bool = False
    latency_runs: int = 20
    show_progress: bool = False
    sign_key: KeySource | None = None

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("precision", _enum(Precision, self.precision, "precision"))
        set_("int8_scope", _enum(Int8Scope, self.int8_scope, "INT8 scope"))
        set_("guard_band", _enum(GuardBand, self.guard_band, "guard band"))
        int8 = Int8Settings.parse(self.calib_method, self.int8_correction)
        set_("calib_method", int8.method)
        set_("int8_correction", int8.correction)
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"confidence {self.confidence} is not in (0, 1)", hint="e.g. 0.95")
        for name in ("max_extra_escape_pct", "max_extra_false_reject_pct"):
            if not 0.0 < getattr(self, name) <= 100.0:
                raise ConfigError(f"{name} {getattr(self, name)} is not a percentage in (0, 100]",
                                  hint="e.g. 5 for 5 %")
        if not 0.0 <= self.max_defect_score_fall <= 1.0:
            raise ConfigError(f"max_defect_score_fall {self.max_defect_score_fall} is not in [0, 1]",
                              hint="a fall of the normalised score (0.5 = the threshold), e.g. 0.1")

    @property
    def evidence(self) -> dict:
        """The gate's evidence settings (:func:`edgead.convert.gate.compare`'s keywords)."""
        return {"confidence": self.confidence, "max_extra_escape_pct": self.max_extra_escape_pct,
                "max_extra_false_reject_pct": self.max_extra_false_reject_pct,
                "max_defect_score_fall": self.max_defect_score_fall}

    @property
    def int8(self) -> Int8Settings:
        """The INT8 settings."""
        return Int8Settings(self.calib_method, self.int8_correction)


@dataclass(frozen=True)
class Plan:
    """What a conversion builds: the candidates (``auto``: every precision the target allows, and its recipes)."""

    requested: Precision
    precisions: tuple[Precision, ...]
    jobs: tuple[Job, ...]
    notes: tuple[str, ...] = ()
    """Candidates not built, and why (OpenVINO not installed, a CPU feature missing)."""


@dataclass(frozen=True)
class ImageSets:
    """The images a conversion works on, loaded once for all candidates.

    Attributes:
        calib: the INT8 calibration set (None without INT8).
        check: the labelled check set of the gate (None without ``check``).
        transfer: the good images of the threshold transfer, with the FP32 outputs on them (None: no transfer).
        samples: a few good images that probe and verify graph rewrites.
        reference: the FP32 graph's outputs on the check set.
    """

    calib: object | None
    check: CheckSet | None
    transfer: TransferSet | None
    samples: np.ndarray | None
    reference: Prediction | None


@dataclass(frozen=True)
class Built:
    """One built candidate: its job, graph, what goes into ``conversion:``, and its row of the report."""

    job: Job
    path: Path
    details: dict
    candidate: Candidate


def plan_conversion(src: Bundle, tgt: Target, options: ConvertOptions) -> Plan:
    """Step 1: the candidates for ``tgt`` and ``options.precision``.

    Raises:
        ConfigError: a precision the target does not allow, INT8 without ``calib``, ``auto`` without ``check``.
    """
    prec = options.precision
    if prec is Precision.AUTO:
        if options.check is None:
            raise ConfigError("--precision auto needs --check DIR", hint="the gate decides which precision is kept")
        wanted = tuple(p for p in tgt.precisions if p is not Precision.INT8 or options.calib is not None)
    elif prec not in tgt.precisions:
        raise ConfigError(f"target {tgt.name} does not allow {prec.value}",
                          hint=f"use one of {[p.value for p in tgt.precisions]}")
    else:
        wanted = (prec,)
    if prec is Precision.INT8 and options.calib is None:
        raise ConfigError("--precision int8 needs --calib DIR (good images)", hint="see calibration/README.md")
    auto = prec is Precision.AUTO
    recipes = tgt.precisions if auto and tgt.backend is BackendKind.ONNXRUNTIME else ()
    jobs = candidate_jobs(wanted, options.int8_scope, auto=auto, recipe_precisions=recipes)
    notes: list[str] = []
    if auto:
        ov_jobs, notes = _openvino_jobs(tgt, Precision.INT8 in wanted, options.int8_scope)
        jobs += ov_jobs
    return Plan(prec, wanted, tuple(jobs), tuple(notes))


def _openvino_jobs(tgt: Target, int8: bool, scope) -> tuple[list[Job], list[str]]:
    """The OpenVINO candidates for this CPU (:mod:`edgead.convert.ov_candidates`) and notes on those left out."""
    import importlib.util

    from edgead.convert.ov_candidates import openvino_jobs
    from edgead.infer.cpu import cpu_flags

    return openvino_jobs(tgt, cpu_flags(), installed=importlib.util.find_spec("openvino") is not None, int8=int8,
                         scope=scope)


def load_image_sets(src: Bundle, options: ConvertOptions, plan: Plan) -> ImageSets:
    """Step 2: the calibration set (INT8 only), the check set, and the FP32 outputs on the check set.

    Raises:
        CalibrationError, DataError: an unusable calibration or check set.
    """
    spec = src.input_spec
    hw = (spec.height, spec.width)
    calib = None
    if options.calib is not None and Precision.INT8 in plan.precisions:
        from edgead.calibration.dataset import load_calibration_set

        calib = load_calibration_set(options.calib, channels=spec.channels, resize_hw=hw, layout=src.meta.layout)
    check = (load_check_set(options.check, channels=spec.channels, map_hw=hw, layout=src.meta.layout)
             if options.check else None)
    reference = None
    if check is not None:  # the FP32 outputs on the check set, once for all candidates (through the layout)
        with open_candidate(src.onnx_path, src) as eng:
            reference = predict(eng, check.images, layout=check.layout)
    good = transfer_images(options.calib, calib, spec.channels, hw, src.meta.layout)
    transfer = TransferSet(src, good, options.guard_band) if good is not None else None
    return ImageSets(calib, check, transfer, sample_images(good, check), reference)


def build_candidates(plan: Plan, src: Bundle, sets: ImageSets, options: ConvertOptions, work: Path) -> list[Built]:
    """Step 3: build every candidate that applies, gate it (with a check set) and time it on this machine."""
    spec = src.input_spec
    built, graphs = [], {}
    bar = progress(len(plan.jobs), "convert", enabled=options.show_progress, unit="candidate")
    for note in plan.notes:  # the candidates this machine cannot build, said first
        bar.note(note)
    for job in plan.jobs:
        got = build_candidate(job, src, work, sets.calib, options.int8, sets.samples, sets.transfer, graphs)
        bar.update()
        if got is None:
            bar.note(f"{job.name}: does not apply to this model (not built)")
            continue
        path, details = got
        gate = None
        if sets.check is not None:
            with job.open(path, src) as eng:
                gate = run_gate(sets.reference, eng, sets.check, artifact=path, tolerance_pt=options.tolerance_pt,
                                pixel_tolerance_pt=options.pixel_tolerance_pt,
                                max_new_reject_pct=options.max_new_reject_pct, latency_runs=0,
                                exact=not job.lossy, **options.evidence)
        built.append(Built(job, path, details, Candidate(job.name, job.precision.value, path.stat().st_size,
                                                         gate=gate, details=details)))
    if options.latency_runs and built:
        if sets.check is None:
            image = np.zeros((1, spec.height, spec.width, spec.channels), np.uint8)
        else:
            images = sets.check.images
            image = images[0][None] if isinstance(images, list) else images[:1]
        time_in_turns(built, src, image, options.latency_runs)
    for b in built:
        bar.note(_candidate_line(b.candidate))
    bar.close()
    return built


def time_in_turns(built: list[Built], src: Bundle, image: np.ndarray, runs: int) -> None:
    """Time every candidate on this machine, all open at once and in turns (:func:`measure_latencies`), so that a
    load change while converting favours none of them; sets each candidate's (and its gate's) latency."""
    with ExitStack() as stack:
        engines = {i: stack.enter_context(b.job.open(b.path, src)) for i, b in enumerate(built)}
        latencies = measure_latencies(engines, image, runs)
    for i, b in enumerate(built):
        c = b.candidate
        c.latency_median_ms, c.latency_p99_ms = latencies[i]
        if c.gate is not None:
            c.gate.latency_median_ms, c.gate.latency_p99_ms = latencies[i]


def _candidate_line(c: Candidate) -> str:
    """One candidate as it lands: the gate's verdict (and why not) and its latency here."""
    lat = f"{c.latency_median_ms:.2f} ms median" if c.latency_median_ms is not None else "not timed"
    if c.gate is None:
        return f"{c.name}: {lat} (no --check: no accuracy gate)"
    verdict = "gate passed" if c.gate.passed else f"gate refused ({'; '.join(c.gate.reasons)})"
    return (f"{c.name}: {verdict}, {lat}, image AUROC {c.gate.image_auroc_delta_pt:+.2f} pt, "
            f"agreement {100 * c.gate.agreement:.1f}%")


def choose(built: list[Built], requested: Precision, force: bool, tgt: Target) -> Built:
    """Step 4: the requested candidate (its gate enforced), or with ``auto`` the fastest that passes.

    Raises:
        GateError: the gate failed (``auto``: every candidate failed) and not ``force``.
    """
    if requested is not Precision.AUTO:
        one = built[0]
        if one.candidate.gate is not None:
            enforce(one.candidate.gate, what=f"{one.job.name} conversion for {tgt.name}", force=force)
        return one
    passing = [b for b in built if b.candidate.passed]
    pool = passing or (built if force else [])
    if not pool:
        raise GateError("no precision passed the accuracy gate: " +
                        "; ".join(f"{b.job.name}: {', '.join(b.candidate.gate.reasons)}" for b in built),
                        hint="use --force to keep the fastest anyway, add labelled images to --check, or raise "
                             "--tolerance-pt or an allowance (--max-extra-escape-pct, --max-extra-false-reject-pct)")
    latency = lambda b: (b.candidate.latency_median_ms is None, b.candidate.latency_median_ms or 0.0)  # noqa: E731
    return min(pool, key=latency)


def compile_here(chosen: Built, src: Bundle, tgt: Target, out: Path) -> tuple[bytes | None, str, str | None]:
    """Step 5: (engine bytes or None, what the report says about the engine, the equivalent trtexec line).

    The engine is compiled here only when the target runs TensorRT and this machine has TensorRT and a GPU;
    otherwise the target's station builds it (``edgead build-engine``, or deploy does it).

    Raises:
        EngineError: the TensorRT build failed.
    """
    if tgt.backend is not BackendKind.TENSORRT:
        on = "OpenVINO" if chosen.job.runtime is BackendKind.OPENVINO else "ONNX Runtime"
        return None, f"none ({on} on the CPU)", None
    from edgead.convert.trt_build import compile_engine, default_engine_path, tensorrt_available, trtexec_command

    spec = src.input_spec
    engine_path = default_engine_path(out)
    trtexec = trtexec_command(f"{out}/{ONNX}", engine_path, tgt, spec.channels)
    if not tensorrt_available():
        return None, (f"not built here (no TensorRT/GPU): build on the {tgt.name} station with "
                      f"`edgead build-engine --bundle {out} --target {tgt.name}` (or deploy does it)"), trtexec
    blob = compile_engine(chosen.path, tgt, chosen.job.precision, spec.channels,
                          cache_path=engine_path.with_suffix(".timing.cache"))
    return blob, f"built: {engine_path} (TensorRT on this machine, beside the bundle)", trtexec


def runtime_of(chosen: Built, tgt: Target) -> BackendKind:
    """The runtime the converted bundle needs: the target's, or on a CPU target the chosen candidate's."""
    return tgt.backend if tgt.backend is BackendKind.TENSORRT else chosen.job.runtime


def write_converted(src: Bundle, tgt: Target, out: Path, chosen: Built, report: ConversionReport,
                    engine: bytes | None, sign_key: KeySource | None = None) -> Bundle:
    """Step 6: the converted bundle (its graph, thresholds moved by the transfer, ``conversion:``, the report;
    signed with ``sign_key`` when given), then the engine beside it, whose header names the new bundle's hash."""
    from edgead.infer.engine_file import write_engine_file

    details = dict(chosen.details)
    calibration = src.meta.calibration
    if "threshold_transfer" in details:
        transfer = dict(details["threshold_transfer"])
        calibration = Calibration.from_dict(transfer.pop("sections"))
        details["threshold_transfer"] = transfer
    gate = chosen.candidate.gate
    openvino = details.pop("openvino", None)
    meta = src.meta.replace(calibration=calibration, conversion=Conversion(
        tgt.name, runtime_of(chosen, tgt).value, chosen.job.precision, src.model_hash,
        gate.to_dict() if gate else None, report.forced, details, openvino))
    files = {n: src.file(n) for n in src.manifest["files"] if n not in (META, MANIFEST, ONNX)}
    files.update({ONNX: chosen.path, REPORT_JSON: report.to_json().encode(), REPORT_MD: report.to_markdown().encode()})
    written = write_bundle(out, meta, files, sign_key)
    if engine is not None:
        from edgead.convert.trt_build import default_engine_path, engine_header

        spec = src.input_spec
        header = engine_header(tgt, chosen.job.precision, model_hash=written.model_hash,
                               input_hw=(spec.height, spec.width), channels=spec.channels,
                               bundle_format_version=written.meta.format_version)
        write_engine_file(default_engine_path(out), header, engine)
    return written


def convert(bundle: str | os.PathLike | Bundle, target: str | Target, out: str | os.PathLike,
            options: ConvertOptions = ConvertOptions()) -> ConversionReport:
    """Convert a bundle for a target and write the result as a bundle.

    Args:
        bundle: the FP32 bundle (directory or ``.edgead``).
        target: a target profile name (``convert/profiles/<name>.yaml``).
        out: the output bundle directory.
        options: how (:class:`ConvertOptions`).

    Returns:
        The :class:`ConversionReport` (also written into the bundle as JSON and Markdown).

    Raises:
        ConfigError: unknown target, precision not allowed by the target, INT8 without ``calib``, ``auto`` without
            ``check``.
        CalibrationError: bad calibration set.  GateError: the gate failed and not ``force``.
        BundleError: bad source bundle.  EngineError: conversion or engine build failed.

    Example:
        >>> convert("bracket/", "x86-cpu", "bracket-int8/", ConvertOptions("int8", calib="good/", check="data/"))
        ...                                                                     # doctest: +SKIP
    """
    src = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    tgt, out = get_target(target), Path(out)
    plan = plan_conversion(src, tgt, options)
    sets = load_image_sets(src, options, plan)
    with tempfile.TemporaryDirectory(prefix="edgead-convert-") as tmp:
        built = build_candidates(plan, src, sets, options, Path(tmp))
        chosen = choose(built, plan.requested, options.force, tgt)
        engine, engine_note, trtexec = compile_here(chosen, src, tgt, out)
        gate = chosen.candidate.gate
        report = ConversionReport(
            source=str(src.root), source_hash=src.model_hash, target=tgt.name,
            backend=runtime_of(chosen, tgt).value,
            requested=plan.requested.value, chosen=chosen.job.name, out=str(out),
            candidates=[b.candidate for b in built], engine=engine_note, trtexec=trtexec,
            forced=bool(gate is not None and not gate.passed), notes=list(plan.notes))
        write_converted(src, tgt, out, chosen, report, engine, options.sign_key)
    return report


__all__ = ["ENGINE", "REPORT_JSON", "REPORT_MD", "ConvertOptions", "build_candidates", "choose", "compile_here",
           "convert", "load_image_sets", "plan_conversion", "write_converted"]
