"""OpenVINO candidates of ``convert --target x86-cpu --precision auto``: which to build on this CPU, and their graphs.

A CPU target's profile lists them under ``openvino`` with the CPU features each keys on (``Target.openvino``):
``ov-fp32`` runs the FP32 graph, ``ov-bf16`` the same graph with OpenVINO's BF16 inference precision (AMX or
AVX512-BF16 kernels), ``ov-int8`` the INT8 Q/DQ graph this conversion made for ONNX Runtime (VNNI or AMX-INT8
kernels). They go through the same threshold transfer and accuracy gate as every candidate, and the fastest that
passes wins; a bundle whose winner runs on OpenVINO records ``conversion.backend: openvino`` and its inference
precision, and the station opens it with OpenVINO (``edgead.infer.bundle_runtime``).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from edgead.calibration.quantize import Int8Scope
from edgead.convert.targets import Precision, Target
from edgead.infer import BackendKind

if TYPE_CHECKING:
    from edgead.bundle import Bundle
    from edgead.convert.candidates import Job

INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
"""OpenVINO candidate -> inference precision of the layers its graph does not quantize."""


def openvino_jobs(target: Target, flags: frozenset[str], *, installed: bool, int8: bool,
                  scope: Int8Scope) -> tuple[list["Job"], list[str]]:
    """The OpenVINO candidates to build for ``target`` on a CPU with ``flags``, and a note for each one left out.

    Args:
        target: the target (``target.openvino``: candidate -> CPU features it keys on).
        flags: this CPU's features (:func:`edgead.infer.cpu.cpu_flags`).
        installed: OpenVINO can be imported here.
        int8: an INT8 graph is made in this conversion (a calibration set was given).
        scope: the INT8 scope of that graph.

    Returns:
        ``(jobs, notes)``; a note says which candidate was not built and why (for the report).
    """
    from edgead.convert.candidates import Job

    if not target.openvino:
        return [], []
    if not installed:
        return [], [f"OpenVINO candidates ({', '.join('ov-' + p for p in target.openvino)}) not built: OpenVINO is "
                    "not installed (pip install 'edgead[openvino]')"]
    jobs, notes = [], []
    for name, keys in target.openvino.items():
        if keys and not set(keys) & flags:
            notes.append(f"ov-{name} not built: this CPU has none of {', '.join(keys)}")
            continue
        if name == "int8" and not int8:
            notes.append("ov-int8 not built: no INT8 graph in this conversion (give --calib)")
            continue
        precision = Precision.INT8 if name == "int8" else Precision.FP32
        jobs.append(Job(f"ov-{name}", precision, scope=scope if name == "int8" else Int8Scope.BACKBONE,
                        runtime=BackendKind.OPENVINO, inference_precision=INFERENCE_PRECISION[name]))
    return jobs, notes


def openvino_graph(job: "Job", src: "Bundle", work: Path, graphs: dict) -> tuple[Path, dict] | None:
    """A copy of the graph ``job`` runs (its thresholds are then transferred on it), and its details.

    Args:
        job: an OpenVINO candidate.
        src: the FP32 bundle.
        work: the conversion's scratch folder.
        graphs: ``(precision, scope) -> path`` of the graphs made so far, before any threshold transfer.

    Returns:
        ``(path, details)``, or None when the graph it needs was not made.
    """
    source = src.onnx_path if job.precision is Precision.FP32 else graphs.get((job.precision, job.scope))
    if source is None:
        return None
    out = Path(shutil.copyfile(source, work / f"model.{job.name}.onnx"))
    return out, {"openvino": {"inference_precision": job.inference_precision}}
