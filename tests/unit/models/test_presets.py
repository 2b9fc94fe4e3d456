"""Model presets: one table per trained model, the device's default, the CLI's help; reading them needs no torch."""
from __future__ import annotations

import subprocess
import sys

import pytest

from edgead.errors import ConfigError
from edgead.models.presets import PRESETS, Preset, parse_preset, preset_rows, render_presets, seconds_text
from edgead.models.registry import MODELS, default_preset, get_spec, model_params, preset_spec

TRAINED = ("efficientad", "draem", "vt-adl", "piade", "ae-knn")


@pytest.mark.parametrize("name", TRAINED)
def test_every_trained_model_has_quick_cpu_and_paper_presets_of_its_own_parameters(name):
    spec = get_spec(name)
    assert spec.presets is PRESETS[name]
    assert {Preset.QUICK, Preset.CPU, Preset.PAPER} <= set(spec.presets)
    assert dict(spec.presets[Preset.QUICK].params) == {}  # quick is the defaults: tests and the demo
    assert spec.cpu_preset in spec.presets
    for preset, entry in spec.presets.items():
        assert set(entry.params) <= set(spec.defaults), (name, preset)
        assert entry.note


def test_preset_params_sit_between_the_defaults_and_the_overrides():
    assert model_params("draem") == MODELS["draem"].defaults
    paper = model_params("draem", "paper")
    assert (paper["rec_width"], paper["disc_width"]) == (128, 64) and paper["steps"] > MODELS["draem"].defaults["steps"]
    assert model_params("draem", Preset.PAPER, steps=7)["steps"] == 7
    assert model_params("efficientad", "cpu")["teacher_data"] == "generic"


def test_the_default_is_paper_on_cuda_and_the_measured_cpu_preset_on_a_cpu():
    for name in TRAINED:
        assert default_preset(name, "cuda") is Preset.PAPER
        assert default_preset(name, "cpu") is get_spec(name).cpu_preset
    assert default_preset("patchcore", "cuda") is None and default_preset("padim", "cpu") is None


def test_unknown_or_missing_presets_are_refused_with_the_choices():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        parse_preset("huge")
    with pytest.raises(ConfigError, match="has no preset 'gpu'") as err:
        preset_spec("vt-adl", "gpu")
    assert "quick" in err.value.hint and "paper" in err.value.hint
    with pytest.raises(ConfigError, match="has no preset 'paper'") as err:
        preset_spec("padim", "paper")
    assert "without a budget" in err.value.hint
    assert dict(preset_spec("padim", "quick").params) == {}  # every model accepts quick: its defaults
    with pytest.raises(ConfigError, match="has no preset 'paper'") as err:
        preset_spec("patchcore", "paper")
    assert "coarse" in err.value.hint


def test_table_text_shows_both_times_and_says_not_measured_instead_of_a_figure():
    text = render_presets()
    for name in TRAINED:
        assert f"  {name}\n" in text
    assert "not measured" in text and "*cpu" in text
    assert seconds_text(None) == "not measured" and seconds_text(57.0) == "57 s" and seconds_text(1945) == "32 min"
    rows = preset_rows(["draem"])
    assert [r["preset"] for r in rows] == ["quick", "cpu", "gpu", "paper"]
    assert all(r["gpu_s_per_100"] is None for r in rows)  # no GPU was lent: never an invented figure


def test_reading_presets_does_not_import_torch():
    code = ("import edgead.models.registry as r, edgead.models.presets as p, sys; p.render_presets(); "
            "r.default_preset('draem', 'cpu'); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_train_help_lists_the_presets(capsys):
    from edgead.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--preset {quick,cpu,gpu,paper,coarse}" in out
    assert "efficientad" in out and "not measured" in out


def test_pipeline_resolves_the_named_preset_or_the_cpu_default():
    pytest.importorskip("torch", reason="needs torch (extra [train])")
    from edgead.train.pipeline import TrainConfig, resolve_preset

    assert resolve_preset(TrainConfig(model="draem")) is get_spec("draem").cpu_preset
    assert resolve_preset(TrainConfig(model="draem"), "cuda") is Preset.PAPER
    assert resolve_preset(TrainConfig(model="draem", preset="quick")) is Preset.QUICK
    assert resolve_preset(TrainConfig(model="padim")) is None
    with pytest.raises(ConfigError, match="no preset 'gpu'"):
        resolve_preset(TrainConfig(model="ae-knn", preset="gpu"))


def test_the_bundle_records_the_preset(small_station, tmp_path):
    pytest.importorskip("torch", reason="needs torch (extra [train])")
    from edgead.bundle import load_bundle
    from edgead.train.pipeline import TrainConfig, train

    cfg = TrainConfig(model="ae-knn", image_size=128, preset="quick", params={"epochs": 1}, evaluate=False)
    bundle = train(small_station.aligned, tmp_path / "b", cfg, progress=False).bundle
    assert load_bundle(bundle.root).meta.training.preset == "quick"
    assert bundle.meta.model.params["epochs"] == 1


def test_a_default_preset_not_measured_to_beat_chance_is_reported(caplog, monkeypatch):
    pytest.importorskip("torch", reason="needs torch (extra [train])")
    import dataclasses

    from edgead.models import presets
    from edgead.train.pipeline import TrainConfig, resolve_preset

    table = dict(presets.PRESETS["vt-adl"])
    table[Preset.CPU] = dataclasses.replace(table[Preset.CPU], magnetic_tile_auroc=52.0)
    monkeypatch.setitem(MODELS, "vt-adl", dataclasses.replace(MODELS["vt-adl"], presets=table))
    with caplog.at_level("WARNING", logger="edgead.train.pipeline"):
        resolve_preset(TrainConfig(model="vt-adl"))
    assert "52.0 % image AUROC on magnetic_tile, near chance" in caplog.text
    assert "use padim or patchcore" in caplog.text  # what to use instead
    caplog.clear()
    with caplog.at_level("WARNING", logger="edgead.train.pipeline"):
        resolve_preset(TrainConfig(model="vt-adl", preset="quick"))  # named: the user chose it
    assert caplog.text == ""


def test_patchcore_offers_coarse_features_beside_its_fine_defaults(capsys):
    from edgead.cli import main

    spec = get_spec("patchcore")
    assert spec.presets is PRESETS["patchcore"] and set(spec.presets) == {Preset.QUICK, Preset.COARSE}
    assert default_preset("patchcore", "cpu") is None and default_preset("patchcore", "cuda") is None  # defaults
    coarse = model_params("patchcore", "coarse")
    assert coarse["layers"] == ["block2", "block4"] and coarse["grid_layer"] == "block2"
    assert model_params("patchcore")["layers"] == ["block0", "block1", "block2"]
    assert all(r["magnetic_tile_auroc"] is not None for r in preset_rows(["patchcore"]))  # each choice measured
    assert main(["models", "patchcore"]) == 0
    out = capsys.readouterr().out
    assert "presets (train --preset NAME" in out and "\n    coarse " in out


@pytest.mark.parametrize(("auroc", "says"), [(None, "not measured on magnetic_tile"), (64.9, "near chance"),
                                             (65.0, None)])
def test_the_default_presets_warning_follows_its_measured_figure(caplog, monkeypatch, auroc, says):
    pytest.importorskip("torch", reason="needs torch (extra [train])")
    import dataclasses

    from edgead.models import presets
    from edgead.train.pipeline import TrainConfig, resolve_preset

    table = dict(presets.PRESETS["piade"])
    table[Preset.CPU] = dataclasses.replace(table[Preset.CPU], magnetic_tile_auroc=auroc)
    monkeypatch.setitem(MODELS, "piade", dataclasses.replace(MODELS["piade"], presets=table))
    with caplog.at_level("WARNING", logger="edgead.train.pipeline"):
        resolve_preset(TrainConfig(model="piade"))
    assert (says in caplog.text) if says else caplog.text == ""


def test_a_measured_cpu_preset_says_its_figures_and_the_command_that_measured_them():
    measured = [r for r in preset_rows() if r["preset"] == "cpu" and r["magnetic_tile_auroc"] is not None]
    assert measured, "at least one cpu preset is measured on magnetic_tile"
    for r in measured:
        assert r["cpu_s_per_100"] is not None, r["model"]
        assert f"benchmarks/curves.py --cache DIR --models {r['model']} --presets cpu" in r["measured"]
    for r in preset_rows():
        if r["magnetic_tile_auroc"] is None and r["cpu_s_per_100"] is None:
            assert r["measured"] == "", (r["model"], r["preset"])  # no source named for figures that do not exist


def test_coarse_names_the_wider_map_options_and_they_apply_on_top_of_it():
    note = PRESETS["patchcore"][Preset.COARSE].note
    assert "--image-size 320x320 --set sigma_px=16" in note  # the documented options (docs/benchmarks.md, round 4)
    wide = model_params("patchcore", "coarse", sigma_px=16.0)
    assert wide["sigma_px"] == 16.0 and wide["layers"] == ["block2", "block4"] and wide["coreset_ratio"] == 0.1
    assert model_params("patchcore", "coarse")["sigma_px"] == model_params("patchcore")["sigma_px"]  # preset keeps 4
