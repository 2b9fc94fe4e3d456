"""One install table (edgead/extras.py): setup.py installs from it, every error hint names one of its extras, and
the station extra holds only what the station imports."""
from __future__ import annotations

import ast
import runpy
from pathlib import Path

import pytest

from edgead import extras
from edgead.errors import MissingExtraError, lazy_import

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "edgead", ROOT / "convert", ROOT / "calibration")


def _calls(name: str, arg: int = 0):
    """(file, line, positional argument ``arg``) of every call to ``name`` in the sources."""
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name:
                    yield path.relative_to(ROOT), node.lineno, node.args[arg] if len(node.args) > arg else None


def test_setup_py_installs_the_table(monkeypatch):
    import setuptools

    seen = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"))
    assert seen["install_requires"] == list(extras.CORE)
    assert seen["extras_require"] == {name: list(reqs) for name, reqs in extras.EXTRAS.items()}


def test_every_module_row_names_a_real_extra():
    for module, extra in extras.MODULES.items():
        assert extra is None or extra in extras.EXTRAS, f"{module} -> {extra!r}: no such extra in edgead/extras.py"


def test_every_lazy_import_has_a_row_and_a_hint_that_names_a_real_extra():
    calls = list(_calls("lazy_import")) + list(_calls("MissingExtraError", arg=1))
    assert len(calls) > 20, "the scan found the call sites"
    for path, line, arg in calls:
        if path.name == "errors.py":
            continue  # the definitions themselves
        if path.as_posix().endswith("edgead/infer/__init__.py"):
            continue  # require_runtime: the module comes from the backends table, checked below
        assert isinstance(arg, ast.Constant), f"{path}:{line}: the module must be a literal"
        extra = extras.extra_for(arg.value)  # KeyError: the module has no row
        hint = extras.install_hint(extra)
        if extra is not None and extra not in extras.HINTS:
            assert hint == f"pip install 'edgead[{extra}]'"
        for named in (w.split("[")[1].split("]")[0] for w in hint.split() if "edgead[" in w):
            assert named in extras.EXTRAS, f"{path}:{line}: hint names {named!r}"


def test_every_backend_runtime_has_a_row():
    from edgead.infer import BACKENDS

    assert {kind.value: row.extra for kind, row in BACKENDS.items()} == {
        "onnxruntime": None, "tensorrt": "trt", "openvino": "openvino"}


def test_no_call_passes_its_own_extra():
    for path, line, _ in _calls("lazy_import"):
        source = (ROOT / path).read_text().splitlines()[line - 1]
        assert "extra=" not in source, f"{path}:{line}: the extra comes from edgead/extras.py"


@pytest.mark.parametrize("module, extra", [("tensorrt", "trt"), ("gi", "genicam"), ("onnx.numpy_helper", "convert"),
                                           ("onnxruntime.quantization", "convert"), ("torch", "train"),
                                           ("cuda.bindings.runtime", "trt")])
def test_missing_module_error_names_its_extra(monkeypatch, module, extra):
    monkeypatch.setitem(__import__("sys").modules, module, None)  # import fails as if not installed
    with pytest.raises(MissingExtraError) as err:
        lazy_import(module, feature="x")
    assert err.value.extra == extra and f"edgead[{extra}]" in str(err.value)


def test_a_core_module_says_to_reinstall(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match="core requirement of edgead: reinstall"):
        lazy_import("onnxruntime", feature="the ONNX Runtime backend")


def test_an_unknown_module_is_a_table_error():
    with pytest.raises(KeyError, match="no row of edgead.extras.MODULES"):
        extras.extra_for("somethingelse")


DISTRIBUTION_MODULES = {"pymodbus": "pymodbus", "PyGObject": "gi", "tensorrt": "tensorrt", "cuda-python": "cuda"}


def test_the_station_extra_holds_only_what_the_station_imports():
    """Each requirement of ``station`` must be imported by the station's code (edgead/ without the build-host
    packages); the station's own Modbus is edgead's codec, so pymodbus is not one."""
    station_imports = set()
    for path in (ROOT / "edgead").rglob("*.py"):
        if path.relative_to(ROOT / "edgead").parts[0] in ("models", "train", "continual", "cli", "deploy", "demo"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                station_imports.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                station_imports.add(node.module.split(".")[0])
    for req in extras.EXTRAS["station"]:
        dist = req.split(">")[0].split("=")[0].split("<")[0].strip()
        assert DISTRIBUTION_MODULES.get(dist, dist) in station_imports, f"station extra installs unused {dist}"
    assert "pymodbus" not in station_imports
