"""One verdict rule: every caller judges the same images with the same ROI rules the same way.

The daemon (its real loop, over a folder:// camera), ``edgead predict --config``, ``edgead predict --bundle``, the
deploy self-test (``edgead selftest`` on the station), the Python API (``edgead.Inspector``) and evaluation all reach their verdicts through
:func:`edgead.contract.decide.decide`; a second implementation in any of them (a ``score >= 0.5`` of its own, an
area in model pixels, no ROIs) changes a verdict below and fails this test. The scan at the end refuses a
threshold comparison on scores or maps anywhere outside the contract.

The frames: one textured part, with blobs of two sizes inside and between two ROIs. With ``min_defect_area_px``
between the sizes, some parts score at or above the threshold and are still accepted (the area rule decides),
and the ROIs change some verdicts against judging the whole image: both are checked, so the test has teeth.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edgead.cli import main
from edgead.contract.decide import DecisionRules
from edgead.daemon.config import load_station
from edgead.daemon.runner import Runner
from edgead.errors import ExitStatus
from edgead.evaluation import evaluate_bundle

# test helpers, on sys.path through tests/conftest.py
import contract_model as cm

ROOT = Path(__file__).resolve().parents[3]
MIN_AREA = 120  # camera pixels; here the medium blobs cover about 25-80 whole and 160-170 in their ROI, the big ones
# over 400
ROIS = [{"name": "left", "x": 0, "y": 0, "width": 20, "height": 64},
        {"name": "right", "x": 44, "y": 0, "width": 20, "height": 64}]
BLOBS = {"good": [], "medium_left": [(10, 32, 3)], "big_left": [(10, 32, 6)], "big_right": [(54, 20, 6)],
         "between": [(32, 32, 6)], "medium_right": [(54, 44, 3)]}
BLOB_VALUE = 200


def _write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-rule")
    bundle = cm.build_bundle(root / "bundle")
    base = cm.good_image(np.random.default_rng(7), (64, 64))
    frames = {}
    for name, blobs in BLOBS.items():
        image = base.copy()
        for cx, cy, r in blobs:
            cv2.circle(image, (cx, cy), r, (BLOB_VALUE,) * 3, -1)
        frames[name] = _write(root / "frames" / f"{name}.png", image)
    reference = _write(root / "reference.png", base)
    # the same frames as a labelled dataset, for evaluation
    for name, path in frames.items():
        label = "good" if name == "good" else "blob"
        _write(root / "data" / "test" / label / path.name, cv2.imread(str(path))[..., ::-1])
    for i in range(4):
        _write(root / "data" / "train" / "good" / f"{i}.png", cm.good_image(np.random.default_rng(i), (64, 64)))

    def config(name: str, *, rois: bool, min_area: int) -> Path:
        cfg = {"camera": {"url": f"folder://{root / 'frames'}?fps=0&pattern=*.png"}, "trigger": "camera",
               "model": {"bundle": str(bundle)}, "decision": {"min_defect_area_px": min_area},
               "plc": {"url": "loop://", "protocol": "discrete"},
               "storage": {"database": str(root / f"{name}.sqlite"), "images_dir": str(root / f"{name}-images")},
               "observe": {"metrics_listen": None},
               "security": {"allow_unsigned": True}}  # the verdict rule here; trust: tests/integration/station
        if rois:
            cfg.update(reference=str(reference), rois=ROIS,
                       alignment={"motion": "translation", "coarse": "none", "pyramid_levels": 1, "finest_level": 0,
                                  "min_quality": 0.3})
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    return {"root": root, "bundle": bundle, "frames": frames,
            "configs": {"rois": config("rois", rois=True, min_area=MIN_AREA),
                        "whole": config("whole", rois=False, min_area=MIN_AREA),
                        "plain": config("plain", rois=False, min_area=0)}}


def _daemon(config: Path) -> dict[str, str]:
    seen = []
    Runner(load_station(config), on_part=seen.append).run()
    return {Path(o.source).stem: o.verdict.value for o in seen}


def _predict(args: list[str], capsys) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["predict", *args, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return {Path(r["image"]).stem: r for r in rows}


@pytest.fixture(scope="module")
def daemon(station):
    return {kind: _daemon(path) for kind, path in station["configs"].items()}


@pytest.mark.parametrize("kind", ["rois", "whole", "plain"])
def test_predict_with_the_station_config_gives_the_daemons_verdicts(station, daemon, kind, capsys):
    images = [str(p) for p in station["frames"].values()]
    rows = _predict(["--config", str(station["configs"][kind]), *images], capsys)
    assert {name: row["verdict"] for name, row in rows.items()} == daemon[kind]
    if kind == "rois":
        assert all([r["name"] for r in row["rois"]] == ["left", "right"] for row in rows.values())


def test_predict_on_a_bundle_judges_the_whole_image_as_the_daemon_does(station, daemon, capsys):
    rows = _predict(["--bundle", str(station["bundle"]), *map(str, station["frames"].values())], capsys)
    assert {name: row["verdict"] for name, row in rows.items()} == daemon["plain"]
    assert all("rois" not in row for row in rows.values())


@pytest.mark.parametrize("kind", ["rois", "whole"])
def test_the_deploy_self_test_gives_the_daemons_verdicts(station, daemon, kind, capsys):
    """`edgead selftest` (the deploy self-test, run on the station) passes with every frame expected as the daemon
    judged it, and fails, naming the frame, when one expectation is the other verdict."""
    config = str(station["configs"][kind])
    good = [str(p) for n, p in station["frames"].items() if daemon[kind][n] == "accept"]
    bad = [str(p) for n, p in station["frames"].items() if daemon[kind][n] == "reject"]
    assert good and bad and len(good) + len(bad) == len(station["frames"])
    capsys.readouterr()
    assert main(["selftest", config, "--good", *good, "--defective", *bad, "--json"]) == ExitStatus.OK
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and result["defective_rejected"] == f"{len(bad)}/{len(bad)}"
    assert main(["selftest", config, "--good", *good[1:], "--defective", good[0], *bad]) == ExitStatus.GATE
    assert f"known-defective sample frames/{Path(good[0]).name} got accept" in capsys.readouterr().err


@pytest.mark.parametrize("kind, min_area", [("whole", MIN_AREA), ("plain", 0)])
def test_the_python_api_gives_the_daemons_verdicts(station, daemon, kind, min_area):
    """``edgead.Inspector`` (the Python API) judges whole images as the daemon does, the area rule included."""
    from edgead import Inspector

    with Inspector(station["bundle"], min_defect_area_px=min_area) as insp:
        got = {name: insp.inspect(path).verdict.value for name, path in station["frames"].items()}
    assert got == daemon[kind]


@pytest.mark.parametrize("kind, rules", [("whole", DecisionRules(MIN_AREA)), ("plain", DecisionRules())])
def test_evaluation_gives_the_daemons_verdicts(station, daemon, kind, rules):
    result = evaluate_bundle(station["bundle"], station["root"] / "data", rules=rules)
    got = {s.path.stem: v.value for s, v in zip(result.samples, result.verdicts)}
    assert got == daemon[kind]
    assert result.metrics["true_reject"] + result.metrics["false_reject"] == list(got.values()).count("reject")


def test_the_cases_exercise_the_area_rule_and_the_rois(station, daemon, capsys):
    """Without these differences the agreement above would prove little."""
    assert daemon["plain"] != daemon["whole"], "the area rule changed no verdict"
    assert daemon["whole"] != daemon["rois"], "the ROIs changed no verdict"
    assert {"accept", "reject"} <= set(daemon["rois"].values())
    rows = _predict(["--config", str(station["configs"]["whole"]), *map(str, station["frames"].values())], capsys)
    area_decided = [n for n, r in rows.items() if r["score"] >= 0.5 and r["verdict"] == "accept"]
    assert area_decided, "no part at or above the threshold was accepted by the area rule"


THRESHOLD_NAMES = {"THRESHOLD"}


def _is_threshold(node) -> bool:
    return (isinstance(node, ast.Constant) and node.value == 0.5) or \
        (isinstance(node, (ast.Name, ast.Attribute)) and getattr(node, "id", getattr(node, "attr", "")) in
         THRESHOLD_NAMES)


def _threshold_comparisons(path: Path) -> list[str]:
    """``x >= 0.5`` (or ``THRESHOLD``) where ``x`` is a score or a map: a verdict rule of its own."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and len(node.comparators) == 1:
            left, right = node.left, node.comparators[0]
            for value, other in ((left, right), (right, left)):
                text = ast.unparse(value).lower()
                if _is_threshold(other) and ("score" in text or "map" in text):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_other_threshold_comparison_on_scores_or_maps():
    allowed = {ROOT / "edgead" / "contract" / "decide.py"}
    found = [hit for folder in ("edgead", "convert", "calibration", "benchmarks")
             for path in sorted((ROOT / folder).rglob("*.py")) if path not in allowed
             for hit in _threshold_comparisons(path)]
    assert not found, "a second verdict rule:\n" + "\n".join(found)
    assert _threshold_comparisons(ROOT / "edgead" / "contract" / "decide.py"), "the scan finds the rule itself"
