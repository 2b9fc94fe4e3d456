"""`edgead eval` shows escapes before AUROCs; `edgead threshold` chooses by escape rate, F1 or FRR with bounds."""
from __future__ import annotations

import json
import shutil

import pytest

from edgead.cli import main
from edgead.errors import ExitStatus


def test_eval_prints_escapes_before_the_aurocs(padim_bundle, small_station, capsys):
    assert main(["eval", "--bundle", str(padim_bundle.bundle.root), "--data", str(small_station.aligned)]) == 0
    out = capsys.readouterr().out
    assert out.index("escapes (defects accepted)") < out.index("image_auroc")
    assert "false rejects (good rejected)" in out and "Clopper-Pearson" in out
    assert main(["eval", "--bundle", str(padim_bundle.bundle.root), "--data", str(small_station.aligned),
                 "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert next(iter(m)) == "confusion"
    c = m["confusion"]
    assert c["escapes"]["count"] == m["false_accept"] and c["escapes"]["n"] == m["n_defective"]
    assert sum(row["n"] for row in c["by_type"].values()) == m["n_good"] + m["n_defective"]
    assert m["escape_rate"] == c["escapes"]["rate"]


@pytest.fixture
def bundle_copy(padim_bundle, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(padim_bundle.bundle.root, b)
    return b


def test_threshold_by_escape_rate(bundle_copy, small_station, capsys):
    rc = main(["threshold", "--bundle", str(bundle_copy), "--target-escape-rate", "0.1",
               "--data", str(small_station.aligned), "--in-place"])
    assert rc == ExitStatus.OK
    cap = capsys.readouterr()
    assert "(escape)" in cap.out and "false-reject rate (good rejected):" in cap.out and "at most" in cap.out
    assert "10 defective image(s) cannot support an escape rate of 10 %" in cap.err  # needs 29
    assert main(["info", str(bundle_copy), "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["thresholds"]
    point = t["operating_point"]
    assert t["method"] == "escape" and t["target_escape_rate"] == 0.1
    assert point["escapes"]["count"] <= 1 and point["escapes"]["n"] == 10 and point["false_rejects"]["n"] == 10
    # eval at the new threshold sees the same escapes on the same images
    assert main(["eval", "--bundle", str(bundle_copy), "--data", str(small_station.aligned), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["false_accept"] == point["escapes"]["count"]


def test_threshold_by_f1_and_frr_warning(bundle_copy, small_station, capsys):
    assert main(["threshold", "--bundle", str(bundle_copy), "--method", "f1",
                 "--data", str(small_station.aligned), "--in-place"]) == 0
    assert "(f1)" in capsys.readouterr().out
    good_only = small_station.aligned / "test" / "good"
    assert main(["threshold", "--bundle", str(bundle_copy), "--target-frr", "0.001", "--data", str(good_only),
                 "--in-place"]) == 0
    cap = capsys.readouterr()
    assert "escape rate (defects accepted): unknown" in cap.out
    assert "cannot support a false-reject rate of 0.1 %" in cap.err and "2995" in cap.err


def test_threshold_method_needs_data(bundle_copy, capsys):
    assert main(["threshold", "--bundle", str(bundle_copy), "--target-escape-rate", "0.01",
                 "--in-place"]) == ExitStatus.BAD_INPUT
    assert "--data" in capsys.readouterr().err
