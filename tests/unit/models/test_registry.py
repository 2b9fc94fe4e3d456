"""The model table: defaults, overrides, errors; reading it needs no torch."""
from __future__ import annotations

import subprocess
import sys

import pytest

from edgead.errors import ConfigError
from edgead.models.registry import MODELS, build, get_spec


def test_table_lists_models_with_descriptions_and_plain_defaults():
    yaml = pytest.importorskip("yaml")
    assert {"patchcore", "padim"} <= set(MODELS)
    for spec in MODELS.values():
        assert spec.description
        assert yaml.safe_load(yaml.safe_dump(spec.defaults)) == spec.defaults


def test_reading_the_table_does_not_import_torch():
    code = "import edgead.models, edgead.models.registry as r, sys; r.MODELS['padim'].defaults; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_build_applies_overrides_and_rejects_unknown():
    pytest.importorskip("torch", reason="needs torch (extra [train])")
    model = build("padim", (64, 96), n_features=10, pretrained=False)
    assert model.export_params()["n_features"] == 10
    assert model.export_params()["input_hw"] == [64, 96]
    with pytest.raises(ConfigError, match="no parameter 'coreset'"):
        build("patchcore", (64, 64), coreset=0.1)
    with pytest.raises(ConfigError, match="unknown model type"):
        get_spec("no-such-model")
    with pytest.raises(ConfigError, match="too small"):
        build("patchcore", (4, 64), pretrained=False)  # below the deepest default layer's stride (8)
