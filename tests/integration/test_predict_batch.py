"""``edgead predict`` on a nested folder with colliding names, globs, CSV / JSON lines, the summary line, and a
corrupt file among good ones."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from edgead.cli import main
from edgead.errors import ExitStatus


@pytest.fixture
def nested(small_station, tmp_path):
    """12 test images copied into a tree where names repeat across folders (and one stem with two suffixes)."""
    src = sorted((small_station.aligned / "test").rglob("*.png"))[:12]
    root = tmp_path / "lot"
    for i, p in enumerate(src):
        dest = root / ("line1" if i % 2 else "line2") / p.parent.name / f"{i // 4:03d}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest = dest.parent / "deep" / dest.name
            dest.parent.mkdir(exist_ok=True)
        shutil.copy(p, dest)
    shutil.copy(src[0], root / "line1" / "000.png")
    shutil.copy(src[1], root / "line1" / "000.bmp")  # the same stem: a bmp copy is still a valid image
    return root


def test_nested_folder_with_colliding_names_csv_and_overlays(padim_bundle, nested, tmp_path, capsys):
    images = sorted(p for p in nested.rglob("*") if p.suffix in (".png", ".bmp"))
    names = [p.name for p in images]
    assert len(names) > len(set(names))  # the test has teeth: names collide across folders
    rows_csv, ov = tmp_path / "rows.csv", tmp_path / "ov"
    assert main(["predict", "--bundle", str(padim_bundle.bundle.root), str(nested), "--format", "csv",
                 "--output", str(rows_csv), "--overlay-dir", str(ov)]) == ExitStatus.OK
    rows = list(csv.DictReader(rows_csv.open()))
    assert sorted(r["image"] for r in rows) == sorted(map(str, images))
    assert all(r["verdict"] in ("accept", "reject") for r in rows)
    overlays = sorted(ov.rglob("*_overlay.png"))
    assert len(overlays) == len(images) == len({r["overlay"] for r in rows})
    for r in rows:  # the overlay mirrors the image's place in the tree
        assert Path(r["overlay"]).relative_to(ov).parent == Path(r["image"]).relative_to(nested).parent
    err = capsys.readouterr().err
    assert f"{len(images)} images: " in err and "accept" in err and f"overlays in {ov}" in err


def test_glob_and_json_lines(padim_bundle, nested, capsys):
    assert main(["predict", "--bundle", str(padim_bundle.bundle.root), str(nested / "**" / "*.bmp"), "--json",
                 "--quiet"]) == ExitStatus.OK
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [r["image"] for r in rows] == [str(nested / "line1" / "000.bmp")] and out.err == ""
    assert main(["predict", "--bundle", str(padim_bundle.bundle.root), str(nested / "**" / "*.tif")]) == 3
    assert "no image matches" in capsys.readouterr().err


def test_a_corrupt_file_among_good_ones(padim_bundle, nested, capsys):
    (nested / "line2" / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    n = len(list(nested.rglob("*.png"))) + len(list(nested.rglob("*.bmp")))
    code = main(["predict", "--bundle", str(padim_bundle.bundle.root), str(nested), "--format", "jsonl"])
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert code == ExitStatus.BAD_INPUT and len(rows) == n  # every other image was still judged
    bad = [r for r in rows if r["verdict"] is None]
    assert len(bad) == 1 and "zz_corrupt.png" in bad[0]["error"]
    assert "1 could not be read" in out.err and "1 of" in out.err and "zz_corrupt.png" in out.err
