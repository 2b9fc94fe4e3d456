"""``edgead dataset --from-records``: the labelled parts of a station as an MVTec-layout dataset, on the build host.

Each labelled part whose image is still in the archive becomes one file; the archive holds the image the model
judged (aligned to the reference), so the dataset is in the model's input domain. The newest label of a part is its
truth (:mod:`edgead.records.labels`); unlabelled parts are left out (a verdict is not ground truth). Layout:

* ``train/good``: the labelled-good parts not held out (what ``edgead update`` learns as a new good variant);
* ``test/good``: every ``holdout``-th labelled-good part (the false rejects ``edgead threshold --target-frr``
  calibrates on);
* ``test/defect``: the labelled defects (the escapes ``--target-escape-rate`` and ``--method f1`` count);
* ``records.json``: each file's row, part id, verdict as sent, score, label, who and when.

So ``records -> labels -> dataset -> edgead threshold|update -> signed bundle -> edgead deploy`` is one loop
(docs/operator-page.md).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from edgead.errors import DataError, OutputError
from edgead.records.labels import Label, latest_labels
from edgead.records.store import RecordStore

DEFECT_DIR = "defect"


@dataclass
class DatasetReport:
    out: Path
    train_good: int = 0
    test_good: int = 0
    test_defect: int = 0
    missing_images: list[int] = field(default_factory=list)

    def line(self) -> str:
        missing = f"; {len(self.missing_images)} labelled parts without an archived image left out" \
            if self.missing_images else ""
        return (f"dataset {self.out}: train/good {self.train_good}, test/good {self.test_good}, "
                f"test/{DEFECT_DIR} {self.test_defect}{missing}")


def dataset_from_records(database: str | os.PathLike, out: str | os.PathLike, *, holdout_every: int = 2,
                         since_ns: int | None = None, until_ns: int | None = None,
                         force: bool = False) -> DatasetReport:
    """Write the labelled parts of ``database`` as an MVTec-layout dataset at ``out``.

    Args:
        database: the station's records.sqlite (its ``image_path`` entries point into the image archive).
        out: a new folder (an existing non-empty one only with ``force``, and only one this function wrote).
        holdout_every: every N-th labelled-good part (in record order) goes to ``test/good``, the rest to
            ``train/good``; at least one goes to test/good, and when none is left for train/good (one good part,
            or ``holdout_every`` 1) the held-out ones are copied there too.
        since_ns, until_ns: only parts captured in this window (wall-clock ns).
        force: replace a dataset written here before.

    Raises:
        DataError: no labelled part with an image (label some first), or no labelled-good part.
        OutputError: ``out`` exists and is not an earlier dataset of this function (or ``force`` is not given).
    """
    if holdout_every < 1:
        raise DataError(f"holdout every {holdout_every}: must be >= 1")
    out = Path(out)
    _check_out(out, force)
    with RecordStore(database) as store:
        labels = latest_labels(store)
        parts = {r.id: r for r in (store.get(row) for row in sorted(labels)) if r is not None}
    report = DatasetReport(out)
    chosen = []
    for row, label in sorted(labels.items()):
        part = parts.get(row)
        if part is None:
            continue
        if since_ns is not None and part.t_ns < since_ns or until_ns is not None and part.t_ns >= until_ns:
            continue
        if part.image_path is None or not Path(part.image_path).is_file():
            report.missing_images.append(row)
            continue
        chosen.append((part, label))
    goods = [p for p, lab in chosen if lab.label is Label.GOOD]
    if not chosen:
        raise DataError(f"records {database}: no labelled part with an archived image",
                        hint="label parts first (operator page, or edgead records label DB PART_ID good|defect); "
                             "an escape needs storage.save_images: all to have its image")
    if not goods:
        raise DataError(f"records {database}: no part labelled good", hint="label the false rejects good")
    test = {id(p) for k, p in enumerate(goods, 1) if k % holdout_every == 0} or {id(goods[-1])}
    both = len(test) == len(goods)  # no good part left for train/good: the held-out ones go to both
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    entries = []
    for part, lab in chosen:
        if lab.label is Label.DEFECT:
            splits = [("test", DEFECT_DIR)]
        elif id(part) in test:
            splits = [("test", "good")] + ([("train", "good")] if both else [])
        else:
            splits = [("train", "good")]
        src = Path(part.image_path)
        name = f"row{part.id:08d}_{_safe(part.part_id)}{src.suffix}"
        for split in splits:
            dest = tmp.joinpath(*split, name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            attr = {"train": "train_good", "good": "test_good"}.get(split[0] if split[0] == "train" else split[1],
                                                                   "test_defect")
            setattr(report, attr, getattr(report, attr) + 1)
        entries.append({"files": ["/".join((*sp, name)) for sp in splits], "row": part.id, "part_id": part.part_id,
                        "verdict": part.verdict.value, "score": part.score, "model_hash": part.model_hash,
                        "label": lab.label.value, "who": lab.who, "labelled_utc": lab.t_utc, "note": lab.note,
                        "t_utc": part.t_utc})
    (tmp / "records.json").write_text(json.dumps({"source": str(database), "parts": entries}, indent=1))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return report


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))[:40]


def _check_out(out: Path, force: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    ours = out.is_dir() and (out / "records.json").is_file()
    if not ours:
        raise OutputError(f"dataset --out {out} exists and is not a dataset written from records",
                          hint="give a new folder")
    if not force:
        raise OutputError(f"dataset --out {out} exists", hint="give a new folder, or --force to replace it")
