"""The HTML report: worst cases ranked by raw score (clipped scores tie), one self-contained file, its sections."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from edgead.data import Color, Sample
from edgead.evaluation.confusion import confusion
from edgead.evaluation.report import worst_cases, write_report
from edgead.evaluation.runner import EvalResult
from edgead.verdict import Verdict

pytest.importorskip("matplotlib", reason="needs matplotlib (extra [train])")


def test_ranking_uses_raw_scores_where_clipped_scores_tie():
    labels = [1, 1, 1, 1, 0, 0, 0]
    raw = [35.0, 16.7, 40.0, 18.5, 9.0, 15.9, 15.0]
    clipped = np.clip(np.array(raw) / 32.0, 0, 1)  # 35 and 40 both clip to 1.0
    assert clipped[0] == clipped[2] == 1.0
    false_rejects, escapes = worst_cases(labels, raw, 2)
    assert escapes.tolist() == [1, 3]  # the weakest defects (16.7, 18.5), not file order
    assert false_rejects.tolist() == [5, 6]
    _, by_clipped = worst_cases(labels, np.clip(np.array(raw) / 16.0, 0, 1), 2)
    assert by_clipped.tolist() == [0, 1]  # what a ranking on clipped scores did: ties fall back to file order


def _result(tmp_path, raw: list[float], labels: list[int], types: list[str]) -> EvalResult:
    rng = np.random.default_rng(0)
    samples, masks = [], []
    for i, (label, t) in enumerate(zip(labels, types)):
        path = tmp_path / f"img{i:02d}_{t}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (40, 48, 3), np.uint8))
        samples.append(Sample(path, label, t))
        m = np.zeros((20, 24), bool)
        if label:
            m[5:9, 6:10] = True
        masks.append(m)
    raw_a = np.array(raw, np.float32)
    thr = 20.0
    scores = np.clip(0.5 * raw_a / thr, 0, 1).astype(np.float32)
    raw_maps = rng.random((len(raw), 20, 24)).astype(np.float32)
    raw_maps[np.stack(masks)] += 2.0
    maps = np.clip(raw_maps / 3.0, 0, 1).astype(np.float16)
    metrics = {"image_auroc": 0.9, "pixel_auroc": 0.95, "aupro": 0.8, "f1_max": 0.9, "ap": 0.9, "threshold": thr,
               "n_good": labels.count(0), "n_defective": labels.count(1),
               "confusion": confusion(labels, scores >= 0.5, types)}
    verdicts = tuple(Verdict.REJECT if s >= 0.5 else Verdict.ACCEPT for s in scores)
    return EvalResult(metrics, tuple(samples), scores, raw_a, maps, np.stack(masks), np.zeros(len(raw)), verdicts,
                      raw_maps)


def test_report_is_one_offline_file_with_raw_ranked_cases(tmp_path):
    raw = [35.0, 16.7, 40.0, 18.5, 90.0, 9.0, 25.0, 15.0]
    labels = [1, 1, 1, 1, 1, 0, 0, 0]
    types = ["crack", "crack", "pit", "pit", "pit", "good", "good", "good"]
    page = write_report(tmp_path / "rep", _result(tmp_path, raw, labels, types), Color.RGB, "test report", worst=3)
    text = page.read_text()
    assert page.name == "report.html" and (tmp_path / "rep" / "metrics.json").is_file()
    assert not re.search(r"""src=["'](?!data:)""", text)  # every image embedded: opens offline
    assert text.index("escapes (defective parts accepted)") < text.index("Threshold-free metrics")
    for section in ("Per defect type", "ROC and PR curves", "score histogram", "Worst escapes", "Worst false rejects"):
        assert section in text
    names = re.findall(r'alt="(img\d\d_\w+\.png)"', text)
    assert names[:3] == ["img01_crack.png", "img03_pit.png", "img00_crack.png"]  # 16.7, 18.5, 35 (not 40, 90)
    assert names[3:] == ["img06_good.png", "img07_good.png", "img05_good.png"]  # 25, 15, 9
    assert "crack" in text and "raw 16.7 vs threshold 20" in text
