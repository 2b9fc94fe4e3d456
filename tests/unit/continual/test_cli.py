"""``edgead update`` and ``edgead eval --tasks`` end to end, in process."""
from __future__ import annotations

import json

from edgead.cli import main
from edgead.errors import ExitStatus


def test_update_then_task_matrix(patchcore_a, tasks, tmp_path, capsys):
    out = tmp_path / "ab"
    rc = main(["update", "--bundle", str(patchcore_a.root), "--data", str(tasks.b), "--out", str(out),
               "--name", "inverted", "--json"])
    assert rc == ExitStatus.OK
    report = json.loads(capsys.readouterr().out)
    assert report["strategy"] == "bank-extension" and [t["name"] for t in report["tasks"]] == ["a", "inverted"]
    rc = main(["eval", "--tasks", "--bundle", str(patchcore_a.root), "--bundle", str(out), "--data", str(tasks.a),
               "--data", str(tasks.b), "--single", str(patchcore_a.root), str(out), "--json"])
    assert rc == ExitStatus.OK
    matrix = json.loads(capsys.readouterr().out)
    auroc = matrix["image_auroc"]
    assert auroc["matrix"][0][1] is None and auroc["matrix"][1][0] == auroc["matrix"][0][0]
    assert auroc["forgetting"] == 0.0 and auroc["gap_to_single"] is not None
    rc = main(["eval", "--tasks", "--bundle", str(out), "--data", str(tasks.a), "--data", str(tasks.b)])
    assert rc == ExitStatus.BAD_INPUT  # one bundle per task
    assert "one bundle per task" in capsys.readouterr().err


def test_update_refuses_a_strategy_of_another_model_type(patchcore_a, tasks, tmp_path, capsys):
    rc = main(["update", "--bundle", str(patchcore_a.root), "--data", str(tasks.b), "--out", str(tmp_path / "x"),
               "--strategy", "running"])
    assert rc == ExitStatus.BAD_INPUT
    assert "does not apply to patchcore" in capsys.readouterr().err
