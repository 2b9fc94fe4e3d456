"""Train -> bundle -> ONNX Runtime evaluation, export parity, the CLI contract and its exit codes."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgead.cli import main
from edgead.errors import ExitStatus
from separation import assert_metric_at_least


def test_trained_bundle_separates_defects(padim_bundle):
    m = padim_bundle.metrics
    assert_metric_at_least("image_auroc", m["image_auroc"], 0.9)
    assert_metric_at_least("pixel_auroc", m["pixel_auroc"], 0.85)
    meta = padim_bundle.bundle.meta
    assert meta.input.height == 128 and meta.input.width == 160  # aspect ratio kept
    assert meta.calibration.method.value == "frr"
    assert meta.training.onnx_parity_max_rel < 1e-3


def test_onnx_matches_torch_rebuilt_from_state(padim_bundle, small_station):
    """The bundle's state.npz rebuilds the nn.Module; its scores match the ONNX graph's raw scores."""
    import torch

    from edgead.models.export import Preprocess
    from edgead.data import Color, load_image, scan_category
    from edgead.infer import open_backend
    from edgead.models.registry import from_state

    b = padim_bundle.bundle
    state = dict(np.load(b.state_path, allow_pickle=False))
    model = from_state(b.model_type, b.meta.model.params, state)
    pre = Preprocess((b.input_spec.height, b.input_spec.width), b.meta.preprocessing.mean,
                     b.meta.preprocessing.std, 3)
    samples = scan_category(small_station.aligned).test[:6]
    with open_backend(b.root) as eng, torch.no_grad():
        for s in samples:
            img = load_image(s.path, Color.RGB)
            want, want_map = model(pre(torch.from_numpy(img)[None]))
            got = eng.infer(img[None])
            np.testing.assert_allclose(got.raw_score, want.numpy(), rtol=1e-3, atol=1e-4)
            np.testing.assert_allclose(got.raw_map, want_map.numpy(), rtol=1e-3, atol=1e-3)


def test_cli_eval_json_and_report(padim_bundle, small_station, tmp_path, capsys):
    rc = main(["eval", "--bundle", str(padim_bundle.bundle.root), "--data", str(small_station.aligned), "--json",
               "--report", str(tmp_path / "rep")])
    assert rc == ExitStatus.OK
    out = json.loads(capsys.readouterr().out)
    for key in ("image_auroc", "pixel_auroc", "aupro", "f1_max", "ap", "threshold", "n_good", "n_defective"):
        assert key in out
    assert out["n_good"] == 10 and out["n_defective"] == 10
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and "Worst escapes" in page
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["per_type"]


def test_cli_predict_and_threshold_without_retraining(padim_bundle, small_station, tmp_path, capsys):
    b = tmp_path / "b"
    shutil.copytree(padim_bundle.bundle.root, b)
    good = next((small_station.aligned / "test" / "good").iterdir())
    assert main(["predict", "--bundle", str(b), str(good), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    raw = before["raw_score"]
    assert main(["threshold", "--bundle", str(b), "--image-threshold", str(raw / 2), "--in-place"]) == 0
    capsys.readouterr()
    assert main(["predict", "--bundle", str(b), str(good), "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["raw_score"] == pytest.approx(raw, rel=1e-5)  # the model is unchanged
    assert after["verdict"] == "reject" and after["score"] >= 0.5  # only the threshold moved
    assert main(["info", str(b), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["thresholds"]["method"] == "manual"


def test_cli_pack_and_load_archive(padim_bundle, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGEAD_CACHE_DIR", str(tmp_path / "cache"))
    archive = tmp_path / "m.edgead"
    assert main(["pack", str(padim_bundle.bundle.root), str(archive)]) == 0
    assert main(["info", str(archive), "--json"]) == 0


def test_bad_inputs_have_clear_errors_and_exit_codes(padim_bundle, tmp_path, capsys):
    (tmp_path / "empty" / "train" / "good").mkdir(parents=True)
    assert main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == ExitStatus.BAD_INPUT
    assert "train/good" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == ExitStatus.BAD_INPUT
    bad = tmp_path / "b"
    shutil.copytree(padim_bundle.bundle.root, bad)
    with open(bad / "model.onnx", "r+b") as f:
        f.truncate(1000)
    capsys.readouterr()
    assert main(["predict", "--bundle", str(bad), str(bad / "edgead.yaml")]) == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err
    assert "model.onnx" in err and "what to do" in err
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    assert main(["predict", "--bundle", str(padim_bundle.bundle.root), str(corrupt)]) == ExitStatus.BAD_INPUT
    assert "corrupt.png" in capsys.readouterr().err
