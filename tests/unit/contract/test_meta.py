"""BundleMeta: parsed and validated once, typed sections, errors that name the key, unknown keys kept."""
from __future__ import annotations

import copy

import pytest
import yaml

from edgead.bundle import load_bundle, write_bundle
from edgead.contract import BundleMeta, Color, Precision
from edgead.contract.layout import Layout, Orientation
from edgead.errors import BundleError

FULL = {
    "format_version": 1, "edgead_version": "0.1.0", "created_utc": "2026-11-22T08:00:00Z",
    "model": {"type": "patchcore", "params": {"bank_size": 100}},
    "backbone": {"name": "efficientnet_lite0", "weights_sha256": "ab"},
    "input": {"height": 64, "width": 96, "channels": 3, "color": "rgb", "dtype": "uint8", "layout": "NHWC"},
    "preprocessing": {"resize": "bilinear", "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]},
    "thresholds": {"image": 2.0, "pixel": 3.0, "method": "frr", "target_frr": 0.01},
    "normalisation": {"image_lo": 1.0, "pixel_lo": 0.5},
    "training": {"data": "/data/a", "data_fingerprint": "f", "n_images": 10, "n_validation": 4, "seed": 0,
                 "seconds": 1.5, "onnx_parity_max_rel": 1e-6, "continual": {"strategy": "replay"}},
    "metrics": {"image_auroc": 0.9},
    "tasks": [{"name": "a", "data": "/data/a", "data_fingerprint": "f", "n_images": 10, "n_validation": 4,
               "added_utc": "2026-11-22T08:00:00Z", "strategy": "fresh"}],
    "replay": {"replay_images": 2, "replay_bytes": 10, "validation_images": 1, "validation_bytes": 5,
               "per_task_replay": [2], "per_task_validation": [1], "budget": 2, "val_per_task": 1, "policy": "p"},
    "conversion": {"target": "x86-cpu", "backend": "onnxruntime", "precision": "int8",
                   "source_bundle_sha256": "cd", "rule": "scope", "gate": {"passed": True}, "forced": False},
    "layout": {"orientation": "landscape", "tile_hw": [256, 320], "overlap_px": 32},
    "future_section": {"kept": True},
}


def test_every_section_is_typed():
    meta = BundleMeta.from_dict(FULL)
    assert meta.model.type == "patchcore" and meta.model.params["bank_size"] == 100
    assert meta.input.color is Color.RGB and meta.input.spec.height == 64
    assert meta.preprocessing.mean == (0.5, 0.5, 0.5)
    assert meta.calibration.image.thr == 2.0 and meta.calibration.pixel.lo == 0.5
    assert meta.training.n_images == 10 and meta.training.continual == {"strategy": "replay"}
    assert meta.tasks[0].strategy == "fresh" and meta.replay.budget == 2 and meta.replay.per_task_replay == (2,)
    assert meta.conversion.precision is Precision.INT8 and meta.precision is Precision.INT8
    assert meta.conversion.details == {"rule": "scope"}
    assert meta.layout == Layout(Orientation.LANDSCAPE, (256, 320), 32)
    assert meta.extra == {"future_section": {"kept": True}}


def test_round_trip_keeps_every_key():
    assert BundleMeta.from_dict(FULL).to_dict() == FULL


def test_defaults_of_a_minimal_bundle():
    meta = BundleMeta.from_dict({"format_version": 1, "model": {"type": "padim"},
                                 "input": {"height": 8, "width": 8, "channels": 1},
                                 "thresholds": {"image": 1.0, "method": "manual"},
                                 "normalisation": {"image_lo": 0.0}})
    assert meta.input.color is Color.GRAY and meta.precision is Precision.FP32 and meta.tasks == ()
    assert meta.training is None and meta.conversion is None and meta.calibration.pixel is None
    assert meta.layout.is_plain and "layout" not in meta.to_dict()  # bundles from before layouts load as plain


def test_a_plain_layout_is_not_written_and_a_written_plain_one_loads_plain():
    data = {**FULL, "layout": {"orientation": "keep", "tile_hw": None, "overlap_px": 0}}
    meta = BundleMeta.from_dict(data)
    assert meta.layout.is_plain and meta.extra == {"future_section": {"kept": True}}
    assert "layout" not in meta.to_dict()
    turned = meta.replace(layout=Layout(Orientation.PORTRAIT))
    assert BundleMeta.from_dict(turned.to_dict()).layout == Layout(Orientation.PORTRAIT)


@pytest.mark.parametrize("path, value, message", [
    (("input", "color"), "bgr", r"input.color: 'bgr' is not valid"),
    (("input", "channels"), 4, r"input.channels: 4 is not 1 \(gray\) or 3"),
    (("input", "color"), "gray", r"color 'gray' does not have 3 channel"),
    (("input", "height"), 0, r"input.height: 0 is not valid"),
    (("input", "layout"), "NCHW", r"the graph contract takes uint8 NHWC"),
    (("model",), None, r"model is not a mapping"),
    (("thresholds", "method"), "median", r"thresholds/normalisation"),
    (("normalisation", "image_lo"), 5.0, r"finite lo < thr"),
    (("conversion", "precision"), "auto", r"'auto' is not a graph precision"),
    (("tasks",), [{"name": "a"}], r"tasks\[0\] lacks 'data'"),
    (("training", "n_images"), "many", r"training.n_images: 'many' is not valid"),
    (("layout", "orientation"), "sideways", r"edgead.yaml.layout: layout orientation 'sideways' is unknown"),
    (("layout", "tile_hw"), [8, 8], r"edgead.yaml.layout: .*each >= 16 px"),
    (("layout", "overlap_px"), 400, r"edgead.yaml.layout: layout overlap_px 400"),
    (("layout", "stride"), 2, r"edgead.yaml.layout: layout has no key 'stride'"),
    (("layout",), "landscape", r"edgead.yaml.layout: layout is not a mapping"),
])
def test_invalid_metadata_names_the_key(path, value, message):
    data = copy.deepcopy(FULL)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(BundleError, match=message):
        BundleMeta.from_dict(data)


def test_a_missing_section_is_named():
    data = {k: v for k, v in FULL.items() if k != "input"}
    with pytest.raises(BundleError, match="edgead.yaml lacks 'input'"):
        BundleMeta.from_dict(data)


def test_load_bundle_validates_once_and_write_refuses_bad_metadata(tmp_path):
    bundle = write_bundle(tmp_path / "b", FULL, {"model.onnx": b"x"})
    assert isinstance(bundle.meta, BundleMeta) and bundle.meta.to_dict() == FULL
    # a bundle whose edgead.yaml is invalid but whose manifest matches it (written by another tool) is refused
    bad = copy.deepcopy(FULL)
    bad["input"]["color"] = "bgr"
    (tmp_path / "b" / "edgead.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(BundleError, match=r"bundle .*b: edgead.yaml.input.color"):
        load_bundle(tmp_path / "b", verify=False)
    with pytest.raises(BundleError, match="metadata.input.color"):
        write_bundle(tmp_path / "c", bad, {"model.onnx": b"x"})
    assert not (tmp_path / "c").exists()


def test_replace_changes_one_section():
    meta = BundleMeta.from_dict(FULL)
    new = meta.replace(metrics={"image_auroc": 1.0})
    assert new.metrics == {"image_auroc": 1.0} and meta.metrics == {"image_auroc": 0.9}
    with pytest.raises(Exception):
        meta.model = None  # frozen
