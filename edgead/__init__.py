"""edgead: train, convert and run visual anomaly detectors on inspection stations.

The Python API, each name imported on first use (``import edgead`` stays cheap and never imports torch)::

    from edgead import Inspector
    insp = Inspector("bracket.edgead")
    result = insp.inspect(image)

    edgead.train("parts/", "bracket.edgead", model="padim")     # build host, [train] extra
    edgead.evaluate("bracket.edgead", "parts/")
"""

__version__ = "0.1.0"

_LAZY = {
    "Inspector": ("edgead.inspector", "Inspector"),
    "InspectionResult": ("edgead.inspector", "InspectionResult"),
    "Verdict": ("edgead.verdict", "Verdict"),
    "evaluate": ("edgead.api", "evaluate"),
}


def __getattr__(name: str):
    if name == "train":  # the package edgead.train, callable as the function (see its docstring)
        import importlib

        return importlib.import_module("edgead.train")
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'edgead' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "train", *_LAZY])


__all__ = ["InspectionResult", "Inspector", "Verdict", "__version__", "evaluate", "train"]
