"""The Python API's build-host half: :func:`train` (:mod:`edgead.train.api`) and :func:`evaluate`, what ``edgead
train`` and ``edgead eval`` call (the CLI only parses arguments into these calls).

Both are reachable from the top-level package without importing this module first::

    import edgead
    result = edgead.train("parts/", "bracket.edgead", model="padim")       # needs the [train] extra (torch)
    metrics = edgead.evaluate("bracket.edgead", "parts/").metrics          # ONNX Runtime, no torch
"""
from __future__ import annotations

import os

from edgead.train.api import train


def evaluate(bundle: str | os.PathLike, data: str | os.PathLike, *, backend: str | None = None,
             report_dir: str | os.PathLike | None = None, progress: bool = False):
    """Evaluate a bundle (or converted bundle) on the labelled ``data/test`` split, as ``edgead eval`` does.

    Args:
        bundle: bundle directory or ``.edgead`` archive.
        data: an MVTec-layout folder with ``test/``.
        backend: ``onnxruntime`` or ``tensorrt`` (default: the bundle's).
        report_dir: also write a report (worst cases as overlays, a metrics table) there.
        progress: a progress bar on a terminal.

    Returns:
        The :class:`edgead.evaluation.EvalResult`; ``.metrics`` holds image/pixel AUROC, AUPRO, F1, the confusion
        counts at the bundle's threshold and the latency.

    Example:
        >>> edgead.evaluate("bracket.edgead", "parts/").metrics["image_auroc"]             # doctest: +SKIP
    """
    from edgead.evaluation import evaluate_bundle

    return evaluate_bundle(bundle, data, backend=backend, progress=progress, report_dir=report_dir)


__all__ = ["evaluate", "train"]
