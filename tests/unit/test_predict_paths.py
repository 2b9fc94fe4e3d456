"""edgead.predict: inputs expanded (files, folders recursively, globs), overlays mirroring the input tree, rows."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from edgead.errors import DataError, OutputError
from edgead.predict import OutputFormat, RowWriter, expand_inputs, open_output, overlay_paths, summary_line


def _tree(root: Path, names: list[str]) -> list[Path]:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    return [root / n for n in names]


def test_folders_recursively_globs_and_files_each_once(tmp_path):
    _tree(tmp_path, ["in/b/x.png", "in/a/x.png", "in/a/deep/x.png", "in/a/x.jpg", "in/.hidden/y.png",
                     "in/a/notes.txt", "other/z.bmp"])
    got = expand_inputs([tmp_path / "in", str(tmp_path / "other" / "*.bmp"), tmp_path / "in" / "a" / "x.png"])
    rel = [p.relative_to(tmp_path).as_posix() for p in got]
    assert rel == ["in/a/deep/x.png", "in/a/x.jpg", "in/a/x.png", "in/b/x.png", "other/z.bmp"]
    assert [p.name for p in expand_inputs([str(tmp_path / "**" / "x.png")])] == ["x.png"] * 3


def test_inputs_that_name_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="does not exist"):
        expand_inputs([tmp_path / "nope.png"])
    with pytest.raises(DataError, match="no image matches"):
        expand_inputs([str(tmp_path / "*.png")])
    with pytest.raises(DataError, match="holds no image"):
        expand_inputs([tmp_path / "empty"])


def test_overlays_mirror_the_tree_and_never_collide(tmp_path):
    images = _tree(tmp_path, ["in/a/x.png", "in/b/x.png", "in/a/deep/x.png", "in/a/x.jpg"] +
                   [f"in/c/{i:03d}.png" for i in range(40)])
    out = overlay_paths(images, tmp_path / "ov")
    assert len(set(out.values())) == len(images) == 44
    rel = {k.relative_to(tmp_path / "in").as_posix(): v.relative_to(tmp_path / "ov").as_posix() for k, v in out.items()}
    assert rel["a/x.png"] == "a/x_png_overlay.png" and rel["a/x.jpg"] == "a/x_jpg_overlay.png"
    assert rel["b/x.png"] == "b/x_overlay.png" and rel["a/deep/x.png"] == "a/deep/x_overlay.png"
    assert overlay_paths([images[0]], "o") == {images[0]: Path("o/x_overlay.png")}


def test_rows_as_csv_jsonl_and_text():
    rows = [{"image": "a.png", "verdict": "reject", "score": 0.9, "raw_score": 3.0, "defect_area_px": 12,
             "backend": "onnxruntime", "rois": [{"name": "r1", "verdict": "reject"}]},
            {"image": "b.png", "verdict": None, "error": "image 'b.png' is corrupt"}]
    out = {f: io.StringIO() for f in OutputFormat}
    for f, stream in out.items():
        w = RowWriter(stream, f)
        for r in rows:
            w.write(r)
    csv_lines = out[OutputFormat.CSV].getvalue().splitlines()
    assert csv_lines[0].startswith("image,verdict,score") and len(csv_lines) == 3
    assert '"[{""name"": ""r1""' in csv_lines[1]
    assert [json.loads(line)["image"] for line in out[OutputFormat.JSONL].getvalue().splitlines()] == ["a.png",
                                                                                                      "b.png"]
    text = out[OutputFormat.TEXT].getvalue()
    assert "reject score=0.900 raw=3  a.png" in text and "error  image 'b.png' is corrupt  b.png" in text


def test_summary_line():
    rows = [{"verdict": "accept"}] * 3 + [{"verdict": "reject"}, {"verdict": None}]
    assert summary_line(rows, 2.0, "ov") == ("5 images: 3 accept, 1 reject; 1 could not be read; 2.0 s "
                                             "(400.0 ms/image); overlays in ov")


def test_output_file_is_not_overwritten_silently(tmp_path):
    (tmp_path / "rows.csv").write_text("old")
    with pytest.raises(OutputError, match="exists"):
        open_output(tmp_path / "rows.csv")
    with pytest.raises(OutputError, match="is a directory"):
        open_output(tmp_path)
    open_output(tmp_path / "rows.csv", force=True).close()
    assert (tmp_path / "rows.csv").read_text() == ""
