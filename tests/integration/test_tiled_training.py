"""A bundle trained on oriented native-resolution tiles: its layout travels in the bundle, and eval, predict and
the station's ROI inference feed frames through it (maps stitched back at native resolution)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from edgead.bundle import load_bundle
from edgead.cli import main
from edgead.contract.layout import Layout, Orientation


@pytest.fixture(scope="module")
def tiled(small_station, tmp_path_factory):
    from edgead.train.pipeline import TrainConfig, train

    out = tmp_path_factory.mktemp("tiled") / "padim"
    cfg = TrainConfig(model="padim", seed=0, layout={"orientation": "landscape", "tile_hw": [64, 96],
                                                     "overlap_px": 16})
    return train(small_station.aligned, out, cfg, progress=False)


def test_bundle_records_its_layout_and_fits_at_tile_resolution(tiled):
    meta = tiled.bundle.meta
    assert meta.layout == Layout(Orientation.LANDSCAPE, (64, 96), 16) and "layout" not in meta.extra
    on_disk = yaml.safe_load((tiled.bundle.root / "edgead.yaml").read_text())["layout"]
    assert on_disk == {"orientation": "landscape", "tile_hw": [64, 96], "overlap_px": 16}
    assert load_bundle(tiled.bundle.root).meta.layout == meta.layout
    assert (meta.input.height, meta.input.width) == (64, 96)  # native resolution, nothing squashed
    m = tiled.metrics
    assert m["image_auroc"] >= 0.8 and m["pixel_auroc"] >= 0.8, m  # synthetic defects found through tiles


def test_eval_maps_come_back_at_native_resolution(tiled, small_station, tmp_path, capsys):
    from edgead.evaluation import evaluate_bundle

    result = evaluate_bundle(tiled.bundle.root, small_station.aligned)
    assert result.raw_maps.shape[1:] == (128, 160)  # the test images' size: stitched from 2 x 2 tiles
    assert main(["eval", "--bundle", str(tiled.bundle.root), "--data", str(small_station.aligned), "--json",
                 "--report", str(tmp_path / "rep")]) == 0
    assert json.loads(capsys.readouterr().out)["pixel_auroc"] == pytest.approx(result.metrics["pixel_auroc"])
    assert (tmp_path / "rep" / "report.html").is_file()


def test_station_roi_goes_through_the_layout(tiled, small_station):
    from edgead.align.roi import Roi
    from edgead.daemon.model import LoadedModel
    from edgead.data import Color, load_image
    from edgead.infer import open_backend

    image = load_image(next((small_station.aligned / "test" / "good").iterdir()), Color.RGB)
    layout = tiled.bundle.meta.layout
    with open_backend(tiled.bundle.root) as engine:
        loaded = LoadedModel(engine, None, [Roi("tall", 0, 0, 70, 120)], 3, tiled.bundle.model_hash, layout)
        [(name, hw, pred)] = loaded.infer_rois(image)
        tiles = [engine.infer(np.ascontiguousarray(np.rot90(image[:120, :70], 1))[None, y:y + 64, x:x + 96])
                 for y, x in ((0, 0), (6, 0), (0, 24), (6, 24))]
    assert name == "tall" and hw == (120, 70) and pred.map.shape == (1, 120, 70)  # back upright, ROI size
    assert pred.raw_score[0] == pytest.approx(max(float(t.raw_score[0]) for t in tiles), rel=1e-5)


def test_predict_goes_through_the_layout(tiled, small_station, capsys):
    from edgead.evaluation import evaluate_bundle

    result = evaluate_bundle(tiled.bundle.root, small_station.aligned)
    i = next(k for k, s in enumerate(result.samples) if s.label == 1)
    assert main(["predict", "--bundle", str(tiled.bundle.root), str(result.samples[i].path), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["raw_score"] == pytest.approx(float(result.raw_scores[i]), rel=1e-5)  # the maximum over its tiles


def test_conversion_gate_scores_through_the_layout(tiled, small_station, tmp_path, monkeypatch):
    """The gate feeds the check set as the station does (turned, native tiles, maps stitched back), through the
    path eval uses: its FP32 reference is eval's result on the same bundle, not the whole images squashed."""
    from edgead.convert.gate import predict
    from edgead.convert.pipeline import ConvertOptions, convert
    from edgead.data import Color, load_image, scan_category
    from edgead.evaluation import evaluate_bundle
    from edgead.infer import open_backend

    monkeypatch.chdir(tmp_path)
    result = evaluate_bundle(tiled.bundle.root, small_station.aligned)
    report = convert(tiled.bundle.root, "x86-cpu", tmp_path / "fp32",
                     ConvertOptions("fp32", check=small_station.aligned, latency_runs=0))
    gate = report.candidates[0].gate
    assert gate.passed, gate.reasons
    assert gate.image_auroc_ref == pytest.approx(result.metrics["image_auroc"], abs=1e-9)
    assert gate.pixel_auroc_ref == pytest.approx(result.metrics["pixel_auroc"], abs=1e-9)
    images = [load_image(s.path, Color.RGB) for s in scan_category(small_station.aligned).test]
    with open_backend(tiled.bundle.root) as engine:
        whole = predict(engine, np.stack(images))  # what the gate fed before: whole frames, squashed to a tile
    assert not np.allclose(whole.raw_score, result.raw_scores)  # so the test tells the two apart
    assert whole.raw_map.shape[1:] == (64, 96) and result.raw_maps.shape[1:] == (128, 160)
