"""CSV export: header, one line per record, exact floats, filters, atomic file."""
from __future__ import annotations

import csv
import io
import json

from edgead.records import CSV_COLUMNS, PartRecord, RecordStore
from edgead.verdict import Verdict

T0 = 1_795_000_000_000_000_000


def test_export_csv_to_path_and_file(tmp_path):
    recs = [
        PartRecord(t_ns=T0, part_id="A1", seq=1, verdict=Verdict.ACCEPT, score=0.1, raw_score=0.123456789012345,
                   total_ms=12.5, model_hash="h", roi_scores={"left": 0.25}),
        PartRecord(t_ns=T0 + 10, part_id='B,"2"', seq=2, verdict=Verdict.REJECT, score=0.9, raw_score=4.0,
                   image_path="/r/b.png"),
        PartRecord(t_ns=T0 + 20, part_id="C3", seq=3, verdict=Verdict.FAULT, error="plc timeout\nretrying"),
    ]
    with RecordStore(tmp_path / "r.db") as store:
        store.add_many(recs)
        n = store.export_csv(tmp_path / "all.csv")
        buf = io.StringIO()
        n_rej = store.export_csv(buf, verdict=Verdict.REJECT)
    assert n == 3 and n_rej == 1
    with open(tmp_path / "all.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [r["part_id"] for r in rows] == ["A1", 'B,"2"', "C3"]
    assert float(rows[0]["raw_score"]) == 0.123456789012345
    assert json.loads(rows[0]["roi_scores"]) == {"left": 0.25}
    assert rows[0]["t_utc"] == recs[0].t_utc and int(rows[0]["t_ns"]) == T0
    assert rows[2]["score"] == "" and rows[2]["error"] == "plc timeout\nretrying" and rows[2]["verdict"] == "fault"
    assert rows[1]["image_path"] == "/r/b.png"
    only = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["seq"] for r in only] == ["2"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".csv" or ".tmp" in p.name) == ["all.csv"]
