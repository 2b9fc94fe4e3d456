"""CPU conversion recipes that ``--precision auto`` tries for ONNX Runtime targets, next to the plain precisions.

One table, :data:`CPU_RECIPES`: each entry names a precision, the exact graph rewrites of
:mod:`edgead.convert.optimize`, and an optional memory-bank reduction (kNN heads) or channel subset (Gaussian
heads: the inverse covariances shrink with k^2 and the deepest backbone layer can be cut). The gate decides per
bundle which one is kept; what each gives on real data is in docs/benchmarks.md ("Conversion for x86-cpu"). A
recipe whose reduction does not apply to the detector (bank on PaDiM, channels on PatchCore) is skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgead.convert.targets import Precision
from edgead.convert.transfer import TransferModel
from edgead.errors import EngineError


@dataclass(frozen=True)
class Recipe:
    """One CPU candidate.

    Attributes:
        name: the candidate's name in the report (``fp32+opt+bank25``).
        precision: numeric precision of the result.
        bank_keep: fraction of the kNN bank kept (None: whole bank, the graph stays exact).
        feat_keep: fraction of a Gaussian head's channels kept, exact marginal (None: all channels).
    """

    name: str
    precision: Precision
    bank_keep: float | None = None
    feat_keep: float | None = None

    @property
    def lossy(self) -> bool:
        """True when the outputs differ from the FP32 graph's (thresholds are transferred, the gate decides)."""
        return self.precision is not Precision.FP32 or self.bank_keep is not None or self.feat_keep is not None

    @property
    def transfer_model(self) -> TransferModel:
        """How its raw scores relate to the FP32 ones: a channel subset scales them, the rest add a noise floor."""
        return TransferModel.SCALE if self.feat_keep is not None else TransferModel.OFFSET


CPU_RECIPES = {r.name: r for r in (
    Recipe("fp32+opt", Precision.FP32),
    Recipe("fp32+opt+bank50", Precision.FP32, 0.5),
    Recipe("fp32+opt+bank25", Precision.FP32, 0.25),
    Recipe("fp32+opt+feat75", Precision.FP32, feat_keep=0.75),
    Recipe("fp32+opt+feat50", Precision.FP32, feat_keep=0.5),
    Recipe("int8+opt", Precision.INT8),
)}
"""Recipe name -> :class:`Recipe`, in the order they are tried."""


def make_recipe(recipe: Recipe, onnx_path: Path, work: Path, images: np.ndarray, calib=None, int8=None,
                int8_scope=None) -> tuple[Path, dict] | None:
    """Write the candidate graph of ``recipe``; None when it does not apply to this graph (e.g. no kNN head).

    Args:
        recipe: the :class:`Recipe`.
        onnx_path: the FP32 contract graph.
        work: scratch folder.
        images: a few ``[N, H, W, C]`` uint8 good images (probing and verification of the rewrites).
        calib: the calibration set (INT8 recipes).
        int8: the :class:`~edgead.calibration.quantize.Int8Settings` (default: the defaults).
        int8_scope: the INT8 recipes' :class:`~edgead.calibration.quantize.Int8Scope` (default: whole backbone).

    Returns:
        (graph path, details for ``conversion:``) or None.
    """
    from edgead.convert.optimize import optimize_graph

    out = work / f"model.{recipe.name.replace('+', '_')}.onnx"
    if recipe.precision is Precision.INT8 and calib is None:
        return None
    opt_path = out if recipe.precision is Precision.FP32 else work / f"{out.stem}.fp32.onnx"
    try:
        res = optimize_graph(onnx_path, opt_path, images, bank_keep=recipe.bank_keep, feat_keep=recipe.feat_keep)
    except EngineError:  # no kNN / Gaussian head to reduce: the recipe does not apply to this detector
        if recipe.bank_keep is None and recipe.feat_keep is None:
            raise
        return None
    details = {"recipe": recipe.name, "optimisation": res.details()}
    if not res.applied:
        return None
    if recipe.precision is Precision.INT8:
        from edgead.calibration.quantize import Int8Scope, Int8Settings, quantize_int8

        int8 = int8 or Int8Settings()
        q = quantize_int8(opt_path, out, calib, method=int8.method, scope=int8_scope or Int8Scope.BACKBONE,
                          correction=int8.correction)
        details.update(q.details())
    return out, details
