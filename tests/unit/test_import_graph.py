"""The layers' import directions, read from the source with ``ast`` (every import, module-level and lazy).

- No import cycle between edgead's packages (``edgead.bundle``, ``edgead.infer``, ...). ``convert/`` and
  ``calibration/`` are one layer, the conversion, and count as one package here. ``__main__`` modules are entry
  points (``python -m edgead.north``), on top of everything like the CLI: their imports are not edges.
- The model side never imports the conversion: only the shells that orchestrate a whole job (the CLI, the demo,
  deploy) do. Conversion depends on the model side, never the other way round.
- The contract imports nothing above it; the bundle imports the contract, never the engines.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"edgead": ROOT / "edgead", "edgead.convert": ROOT / "convert", "edgead.calibration": ROOT / "calibration"}
CONVERSION = "edgead.conversion"  # convert/ and calibration/ as one node
SHELLS = {"edgead.cli", "edgead.demo", "edgead.deploy"}
"""The packages that may import the conversion: they run whole jobs (``edgead convert``, the demo, a release)."""


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as ``a`` and ``a.b``), relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _package(module: str) -> str | None:
    """The node of the graph a module belongs to (None: not edgead, or edgead's top-level modules)."""
    parts = module.split(".")
    if parts[0] != "edgead" or len(parts) < 2:
        return None
    if parts[1] in ("convert", "calibration"):
        return CONVERSION
    return f"edgead.{parts[1]}"


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the modules that import it (for the messages)."""
    modules = _modules()
    edges: dict[str, dict[str, set[str]]] = {}
    for name, path in modules.items():
        if name.endswith(".__main__"):
            continue
        src = _package(name)
        for imported in _imports(name, path):
            dst = _package(imported)
            if src and dst and dst != src:
                edges.setdefault(src, {}).setdefault(dst, set()).add(name)
    return edges


def _reachable(edges, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), {}):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_sources_are_found(graph):
    assert {"edgead.bundle", "edgead.infer", "edgead.contract", "edgead.models", CONVERSION} <= set(graph)


def test_no_import_cycle_between_packages(graph):
    cycles = sorted(f"{a} -> {b} (in {', '.join(sorted(graph[a][b]))})"
                    for a in graph for b in graph[a] if a in _reachable(graph, b))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_bundle_does_not_import_the_engines(graph):
    assert "edgead.infer" not in _reachable(graph, "edgead.bundle")
    assert "edgead.bundle" in graph["edgead.infer"]  # the one direction: engines open bundles


def test_the_model_side_never_imports_the_conversion(graph):
    offenders = sorted(f"{pkg}: {', '.join(sorted(graph[pkg][CONVERSION]))}"
                       for pkg in graph if pkg not in SHELLS and pkg != CONVERSION and CONVERSION in graph[pkg])
    assert not offenders, "model side imports edgead.convert/edgead.calibration:\n" + "\n".join(offenders)


def test_the_contract_sits_at_the_bottom(graph):
    below = {"edgead.errors", "edgead.extras", "edgead.verdict", "edgead.metrics"}
    assert _reachable(graph, "edgead.contract") <= below


def test_a_cycle_would_be_found(tmp_path):
    """The checker itself: a relative import is resolved, and a planted cycle is reported."""
    pkg = tmp_path / "edgead" / "bundle"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .core import x\nfrom edgead.infer import open_backend\n")
    assert _imports("edgead.bundle", pkg / "__init__.py") >= {"edgead.bundle.core", "edgead.infer"}
    edges = {"edgead.bundle": {"edgead.infer": {"m"}}, "edgead.infer": {"edgead.bundle": {"n"}}}
    assert "edgead.bundle" in _reachable(edges, "edgead.infer")
