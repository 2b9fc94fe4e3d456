"""benchmarks/peers.py: what its cache of trained models keeps between runs.

Nothing here trains or times anything; the project tree is a small one made in tmp_path.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
_spec = importlib.util.spec_from_file_location("edgead_peers_benchmark", ROOT / "benchmarks" / "peers.py")
peers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peers)


def _tree(root: Path) -> Path:
    for name in peers.SOURCES:
        (root / name).mkdir(parents=True)
        (root / name / "a.py").write_text(f"# {name}\n")
    (root / "benchmarks").mkdir()
    side = root / "benchmarks" / "side.py"
    side.write_text("x = 1\n")
    return side


def test_the_key_follows_the_code_the_settings_and_the_named_files(tmp_path):
    side = _tree(tmp_path)
    key = peers.code_key("padim", 256, root=tmp_path, files=(side,))
    assert peers.code_key("padim", 256, root=tmp_path, files=(side,)) == key
    assert peers.code_key("patchcore", 256, root=tmp_path, files=(side,)) != key
    (tmp_path / "convert" / "a.py").write_text("# convert, changed\n")
    changed = peers.code_key("padim", 256, root=tmp_path, files=(side,))
    assert changed != key
    side.write_text("x = 2\n")
    now = peers.code_key("padim", 256, root=tmp_path, files=(side,))
    assert now != changed
    (tmp_path / "edgead" / "notes.txt").write_text("not code\n")
    assert peers.code_key("padim", 256, root=tmp_path, files=(side,)) == now


def test_a_result_is_reused_only_under_its_own_key(tmp_path, capsys):
    summary = tmp_path / "summary.json"
    assert peers.cached(summary, "k1") is None
    summary.write_text(json.dumps({"chosen": "fp32"}))  # an older revision's summary: no key
    assert peers.cached(summary, "k1") is None
    assert "made by other code" in capsys.readouterr().err
    summary.write_text(json.dumps({"chosen": "fp32+opt", "cache_key": "k0"}))
    assert peers.cached(summary, "k1") is None
    summary.write_text(json.dumps({"chosen": "fp32+opt", "cache_key": "k1"}))
    assert peers.cached(summary, "k1")["chosen"] == "fp32+opt"
