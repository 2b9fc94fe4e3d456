"""`edgead deploy` against a real sshd on 127.0.0.1, with the `direct` service manager and the real daemon."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from edgead.cli import main

from .conftest import EDGEAD
from edgead.errors import ExitStatus

pytestmark = pytest.mark.timeout(600)


def _deploy(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _status(deploy_args, prefix, capsys) -> dict:
    code, out, err = _deploy(deploy_args(prefix, "--status", "--json"), capsys)
    assert code == ExitStatus.OK, err
    return json.loads(out)


def _current(prefix) -> str | None:
    link = prefix / "current"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def test_tampered_bundle_is_refused_before_anything_is_copied(deploy_args, prefixes, make_config, bundle,
                                                              tmp_path, capsys):
    from forge import resigned_copy, tampered_copy

    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    meta = tampered / "edgead.yaml"
    meta.write_text(meta.read_text().replace("padim", "padim ", 1))
    rehashed = tampered_copy(bundle, tmp_path / "rehashed")  # manifest recomputed, signature dropped
    resigned, attacker = resigned_copy(bundle, tmp_path / "resigned")  # and signed by a key nobody trusts
    prefix = prefixes()
    for candidate, words in ((tampered, ["edgead.yaml"]), (rehashed, ["is not signed"]),
                             (resigned, [f"signed by key {attacker.key_id}", "does not trust"])):
        code, _, err = _deploy(deploy_args(prefix, str(make_config()), "--bundle", str(candidate)), capsys)
        assert code == ExitStatus.DEPLOY
        assert "refusing to deploy bundle" in err and all(w in err for w in words), err
        assert not prefix.exists()  # nothing copied, nothing switched


def test_failing_first_release_leaves_nothing_live_and_station_venv_has_no_torch(deploy_args, prefixes,
                                                                                  make_config, tmp_path, capsys):
    prefix = prefixes()
    config = make_config(camera_dir=str(tmp_path / "no-such-camera-folder"))
    code, _, err = _deploy(deploy_args(prefix, str(config)), capsys)
    assert code == ExitStatus.DEPLOY
    assert "step 'health' failed" in err and "no previous release" in err
    # progress, one line per step as it ends (stderr is not a terminal here: lines, not a bar)
    steps = [line.split(": ", 2)[1] for line in err.splitlines() if line.startswith("deploy to ")]
    assert steps[:5] == ["build", "copy", "verify", "venv", "engine"], err
    assert _current(prefix) is None
    (release,) = [p for p in (prefix / "releases").iterdir() if not p.name.startswith(".")]
    assert (release / "FAILED").exists()
    vpy = str(release / "venv" / "bin" / "python")
    assert subprocess.run([vpy, "-c", "import torch"], capture_output=True).returncode != 0
    subprocess.run([vpy, "-c", "import edgead.infer, onnxruntime"], check=True)
    for absent in ("pymodbus", "onnx"):  # the station extra holds only what the station imports
        assert subprocess.run([vpy, "-c", f"import {absent}"], capture_output=True).returncode != 0, absent
    status = _status(deploy_args, prefix, capsys)
    assert status["current"] is None


def _signed_threshold(bundle, out, raw_threshold: float, key) -> str:
    """The bundle with its image threshold moved (what a wrong `edgead threshold` makes), signed by the trusted key:
    0 rejects every part, 1e9 accepts every part."""
    subprocess.run([EDGEAD, "threshold", "--bundle", str(bundle), "--image-threshold", str(raw_threshold), "--out",
                    str(out), "--sign-key", str(key)], check=True, capture_output=True)
    return str(out)


def test_good_release_goes_live_and_a_broken_one_is_rolled_back(needs_daemon, deploy_args, prefixes, make_config,
                                                                bundle, bundle_key, tmp_path, capsys):
    prefix = prefixes()
    code, out, err = _deploy(deploy_args(prefix, str(make_config()), "--json"), capsys)
    assert code == ExitStatus.OK, err
    good = json.loads(out)
    assert _current(prefix) == good["release"]
    assert good["selftest"]["passed"] and good["selftest"]["good_accepted"] == "3/3"
    assert good["selftest"]["defective_rejected"] == "2/2"  # the dataset's two test defects
    status = _status(deploy_args, prefix, capsys)
    assert status["current"] == good["release"] and status["service"] == "ready"
    assert status["model_hash"] == good["model_hash"] and status["uptime_s"] is not None
    assert status["selftest"]["passed"] and status["signed_by"] == bundle_key.key_id

    # a model that rejects everything, then one that accepts everything: each fails the self-test on the station,
    # naming a sample, before anything is switched; the good release stays live
    always_reject = _signed_threshold(bundle, tmp_path / "always-reject", 0.0, bundle_key.key)
    always_accept = _signed_threshold(bundle, tmp_path / "always-accept", 1e9, bundle_key.key)
    for candidate, words in ((always_reject, ["known-good sample good/", "got reject, ", "expected accept"]),
                             (always_accept, ["known-defective sample defective/", "got accept", "expected reject"])):
        code, _, err = _deploy(deploy_args(prefix, str(make_config()), "--bundle", candidate), capsys)
        assert code == ExitStatus.DEPLOY
        assert "step 'selftest' failed" in err and all(w in err for w in words), err
        assert "nothing was switched" in err and _current(prefix) == good["release"]
        status = _status(deploy_args, prefix, capsys)
        assert status["current"] == good["release"] and status["selftest"]["passed"]
        assert status["last_deploy"]["step"] == "selftest" and status["last_deploy"]["selftest_passed"] is False

    # a config whose daemon cannot start: rolled back as well
    broken = make_config("broken.yaml", camera_dir=str(tmp_path / "missing"))
    code, _, err = _deploy(deploy_args(prefix, str(broken)), capsys)
    assert code == ExitStatus.DEPLOY and "step 'health' failed" in err
    status = _status(deploy_args, prefix, capsys)
    assert status["current"] == good["release"] and status["service"] == "ready"
    assert sum(r["failed"] for r in status["releases"]) == 3


def test_rollback_and_status(needs_daemon, deploy_args, prefixes, make_config, capsys):
    prefix = prefixes()
    releases = []
    for _ in range(2):
        code, out, err = _deploy(deploy_args(prefix, str(make_config()), "--json"), capsys)
        assert code == ExitStatus.OK, err
        releases.append(json.loads(out)["release"])
    assert _current(prefix) == releases[1]
    code, out, err = _deploy(deploy_args(prefix, "--rollback"), capsys)
    assert code == ExitStatus.OK, err
    assert _current(prefix) == releases[0]
    status = _status(deploy_args, prefix, capsys)
    assert status["current"] == releases[0] and status["service"] == "ready"
    assert status["parts_inspected"] == "unknown" or isinstance(status["parts_inspected"], int)
    # nothing older is left: a second rollback fails with a clear message
    code, _, err = _deploy(deploy_args(prefix, "--rollback"), capsys)
    assert code == ExitStatus.DEPLOY and "no healthy release older than" in err


def test_tensorrt_target_without_tensorrt_fails_at_the_engine_step(deploy_args, prefixes, make_config, capsys):
    """A TensorRT target: the venv sees the system site-packages (apt's TensorRT on Jetson), the station config
    names the engine the station builds, and without TensorRT the engine step fails before anything is switched."""
    prefix = prefixes()
    code, _, err = _deploy(deploy_args(prefix, str(make_config()), "--target", "rtx-ada"), capsys)
    assert code == ExitStatus.DEPLOY
    assert "step 'engine' failed" in err and "'tensorrt'" in err and "edgead[trt]" in err, err
    assert "nothing was switched" in err and _current(prefix) is None
    (release,) = [p for p in (prefix / "releases").iterdir() if not p.name.startswith(".")]
    assert (release / "FAILED").exists()
    import yaml

    assert yaml.safe_load((release / "station.yaml").read_text())["model"]["engine"] == "engine/model.engine"
    assert "include-system-site-packages = true" in (release / "venv" / "pyvenv.cfg").read_text()
