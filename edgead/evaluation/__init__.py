"""Evaluate a bundle or converted artifact on a labelled dataset through the runtime engine (no torch)."""
from edgead.evaluation.runner import EvalResult, evaluate_bundle, run_on_samples

__all__ = ["EvalResult", "evaluate_bundle", "run_on_samples"]
