"""records -> labels -> dataset -> threshold on the synthetic station, end to end through the CLI.

The daemon judges 24 replayed parts (every image archived); an operator labels them from the ground truth
(false rejects good, escapes defect, and the rest); ``edgead dataset --from-records`` writes the labelled parts as
an MVTec-layout dataset; ``edgead threshold`` recalibrates the bundle on it; the new bundle passes ``edgead check``
in the station's config, which is what ``edgead deploy`` runs on the station.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from replay_station import replay_config, write_config  # tests/helpers

from edgead.cli import main
from edgead.daemon.config import load_station
from edgead.daemon.runner import Runner
from edgead.records import RecordStore
from edgead.records.labels import add_label

pytestmark = pytest.mark.timeout(300)


def test_records_labels_dataset_threshold_loop(small_station, padim_bundle, bundle_key, tmp_path, capsys):
    # fps=0 replays as fast as the loop goes; the image writer runs below it (runtime.image_nice) and skips an image
    # when its queue is full, by design. The dataset needs every image: a queue deeper than the 24 parts.
    cfg = replay_config(tmp_path, small_station, padim_bundle.bundle, bundle_key.security,
                        runtime={"image_queue": 64})
    station_yaml = write_config(tmp_path, cfg)
    seen = []
    Runner(load_station(station_yaml), on_part=seen.append).run()
    assert len(seen) == 24
    truth = json.loads((small_station.captures / "truth.json").read_text())["files"]
    is_defect = {o.row_id: truth[Path(o.source).name]["label"] == 1 for o in seen}

    # one label through the CLI (by part id, as an operator types it), the others through the API
    first = seen[0]
    word = "defect" if is_defect[first.row_id] else "good"
    assert main(["records", "label", str(station_yaml), first.part_id, word, "--who", "anna",
                 "--note", "audit"]) == 0
    assert f"labelled {word} by anna" in capsys.readouterr().out
    with RecordStore(tmp_path / "records.sqlite") as store:
        for o in seen[1:]:
            add_label(store, o.row_id, "defect" if is_defect[o.row_id] else "good", who="ben")
    conn = sqlite3.connect(tmp_path / "records.sqlite")
    sent = dict(conn.execute("SELECT id, verdict FROM parts"))
    conn.close()
    assert sent == {o.row_id: o.verdict.value for o in seen}  # labels never rewrite the verdict as sent

    ds = tmp_path / "labelled"
    assert main(["dataset", "--from-records", str(station_yaml), "--out", str(ds)]) == 0
    n_defect = sum(is_defect.values())
    n_good = 24 - n_defect
    assert f"train/good {n_good - n_good // 2}, test/good {n_good // 2}, test/defect {n_defect}" in \
        capsys.readouterr().out
    manifest = json.loads((ds / "records.json").read_text())["parts"]
    assert len(manifest) == 24 and {p["who"] for p in manifest} == {"anna", "ben"}
    assert main(["dataset", "--from-records", str(station_yaml), "--out", str(ds)]) != 0  # no silent overwrite
    capsys.readouterr()

    new = tmp_path / "recalibrated"
    assert main(["threshold", "--bundle", str(padim_bundle.bundle.root), "--data", str(ds), "--method", "f1",
                 "--out", str(new), "--sign-key", str(bundle_key.key)]) == 0
    out = capsys.readouterr().out
    assert "image threshold" in out and "(f1)" in out
    cfg["model"]["bundle"] = str(new)
    write_config(tmp_path, cfg)
    assert main(["check", str(station_yaml)]) == 0
    assert "is valid" in capsys.readouterr().out

    # the same dataset extends the model with its labelled-good parts as a new task (edgead update)
    updated = tmp_path / "updated"
    assert main(["update", "--bundle", str(padim_bundle.bundle.root), "--data", str(ds), "--out", str(updated),
                 "--quiet", "--sign-key", str(bundle_key.key)]) == 0
    assert "task 'labelled' added" in capsys.readouterr().out
    cfg["model"]["bundle"] = str(updated)
    write_config(tmp_path, cfg)
    assert main(["check", str(station_yaml)]) == 0
