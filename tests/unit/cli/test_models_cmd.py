"""``edgead models``: the registry's table with every parameter and default, without importing torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edgead.cli import main
from edgead.errors import ExitStatus
from edgead.models.catalog import _value, render_markdown
from edgead.models.registry import MODELS

ROOT = Path(__file__).resolve().parents[3]


def test_lists_every_model_with_its_defaults(capsys):
    assert main(["models"]) == ExitStatus.OK
    out = capsys.readouterr().out
    for name, spec in MODELS.items():
        assert f"{name}  ({spec.supervision.value})" in out and spec.description in out
        block = out.split(f"{name}  (", 1)[1].split("\n\n", 1)[0]
        for key, value in spec.defaults.items():  # every parameter with its default, as --set takes it
            assert f"\n    {key} = {_value(value)}\n" in block + "\n", (name, key)
    assert _value(["block2", "block3"]) == "[block2, block3]" and _value(None) == "null" and _value(True) == "true"


def test_json_is_the_registry(capsys):
    assert main(["models", "--json", "efficientad", "capsnet"]) == ExitStatus.OK
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["efficientad", "capsnet"]
    assert rows[0]["parameters"] == MODELS["efficientad"].defaults and rows[1]["supervision"] == "labelled"


def test_unknown_model_is_named(capsys):
    assert main(["models", "patchcroe"]) == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err
    assert "unknown model type 'patchcroe'" in err and "patchcore" in err


def test_does_not_import_torch():
    code = ("import sys; from edgead.cli import main; main(['models']); "
            "assert 'torch' not in sys.modules, 'edgead models imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_docs_table_is_up_to_date():
    assert (ROOT / "docs" / "models" / "README.md").read_text() == render_markdown(), \
        "docs/models/README.md is out of date: run `make docs`"
