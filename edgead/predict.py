"""``edgead predict`` on many images: inputs (files, folders searched recursively, globs), where each image's
overlay goes (a mirror of the input tree, so no two images share a name), the rows as text, CSV or JSON lines,
and the summary line.

Pure file handling: the judging itself is the station's (:meth:`edgead.daemon.model.LoadedModel.inspect`).

Example:
    >>> images = expand_inputs(["parts/", "extra/*.png"])               # doctest: +SKIP
    >>> overlays = overlay_paths(images, "out/")                         # doctest: +SKIP
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Iterable, Sequence

from edgead.errors import DataError, OutputError, short_path

GLOB_CHARS = "*?["


class OutputFormat(str, Enum):
    """How ``edgead predict`` writes its rows."""

    TEXT = "text"  # one aligned line per image, for people
    CSV = "csv"  # a header and one row per image (ROIs as a JSON column)
    JSONL = "jsonl"  # one JSON object per line


CSV_COLUMNS = ("image", "verdict", "score", "raw_score", "defect_area_px", "align_quality", "backend", "overlay",
               "error", "rois")


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Every image the inputs name, in order, each once.

    A file is taken as given (whatever its suffix: a wrong file is an error when it is read); a folder gives its
    images (``.png/.jpg/.jpeg/.bmp``, hidden files skipped) searched recursively in sorted order; a pattern with
    ``* ? [`` is a glob (``**`` spans folders), and the folders it matches are searched like folders.

    Raises:
        DataError: an input that does not exist, a pattern or folder with no image.
    """
    from edgead.data.images import IMAGE_SUFFIXES, is_image_file

    out: list[Path] = []
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text)
        if path.is_dir():
            found = _images_under(path)
        elif path.exists() or path.is_symlink():
            found = [path]
        elif any(c in text for c in GLOB_CHARS):
            found = []
            for match in sorted(glob.glob(text, recursive=True)):
                m = Path(match)
                found += _images_under(m) if m.is_dir() else ([m] if is_image_file(m) else [])
            if not found:
                raise DataError(f"no image matches {short_path(text)}",
                                hint=f"images are {'/'.join(IMAGE_SUFFIXES)}; quote the pattern so the shell "
                                     "does not expand it")
        else:
            raise DataError(f"image or folder {short_path(text)} does not exist")
        if path.is_dir() and not found:
            raise DataError(f"folder {short_path(path)} holds no image ({'/'.join(IMAGE_SUFFIXES)}), searched "
                            "recursively")
        out += found
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _images_under(folder: Path) -> list[Path]:
    from edgead.data.images import is_image_file

    return sorted(p for p in folder.rglob("*")
                  if is_image_file(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def overlay_paths(images: Sequence[Path], out_dir: str | os.PathLike) -> dict[Path, Path]:
    """Where each image's overlay goes: the images' tree below their common folder, mirrored under ``out_dir``
    (``good/007.png`` -> ``OUT/good/007_overlay.png``). Two images never share a name: where two differ only in
    their suffix (``a.png``, ``a.jpg``) the suffix is kept (``a_png_overlay.png``).

    Example:
        >>> [str(p) for p in overlay_paths([Path("/d/a/x.png"), Path("/d/b/x.png")], "o").values()]
        ['o/a/x_overlay.png', 'o/b/x_overlay.png']
    """
    resolved = [p.resolve() for p in images]
    if not resolved:
        return {}
    base = Path(os.path.commonpath([p.parent for p in resolved]))
    stems = Counter((p.parent, p.stem) for p in resolved)
    out = {}
    for img, res in zip(images, resolved):
        name = res.stem if stems[(res.parent, res.stem)] == 1 else f"{res.stem}_{res.suffix.lstrip('.')}"
        out[img] = Path(out_dir) / res.parent.relative_to(base) / f"{name}_overlay.png"
    return out


@dataclass
class RowWriter:
    """Writes the rows in one :class:`OutputFormat` to a stream (stdout, or the ``--output`` file)."""

    stream: IO[str]
    fmt: OutputFormat = OutputFormat.TEXT
    _csv: csv.DictWriter | None = field(default=None, init=False, repr=False)

    def write(self, row: dict) -> None:
        """One image's row (``rois``, a list, becomes a JSON string in CSV)."""
        if self.fmt is OutputFormat.JSONL:
            self.stream.write(json.dumps(row, default=float) + "\n")
        elif self.fmt is OutputFormat.CSV:
            if self._csv is None:
                self._csv = csv.DictWriter(self.stream, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
                self._csv.writeheader()
            flat = dict(row)
            if "rois" in flat:
                flat["rois"] = json.dumps(flat["rois"], default=float)
            if isinstance(flat.get("overlay"), list):
                flat["overlay"] = ";".join(flat["overlay"])
            self._csv.writerow(flat)
        else:
            if row.get("score") is not None:
                detail = f"score={row['score']:.3f} raw={row['raw_score']:.5g}"
            else:
                detail = row.get("error", "")
            self.stream.write(f"{row['verdict'] or 'error':6} {detail}  {row['image']}\n")
        self.stream.flush()


def open_output(path: str | os.PathLike | None, *, force: bool = False) -> IO[str]:
    """The rows' stream: stdout (None or ``-``) or a new file (an existing one only with ``force``).

    Raises:
        OutputError: the file exists (without ``force``) or is a directory.
    """
    import sys

    if path is None or os.fspath(path) == "-":
        return sys.stdout
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"--output {short_path(p)} is a directory", hint="name a file, e.g. predictions.csv")
    if p.exists() and not force:
        raise OutputError(f"--output {short_path(p)} exists; nothing was written",
                          hint="choose a new file, or add --force to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    return io.open(p, "w", newline="", encoding="utf-8")


def summary_line(rows: Iterable[dict], seconds: float, overlay_dir: str | os.PathLike | None = None) -> str:
    """``N images: A accept, R reject, ...; E errors; T s (M ms/image)[; overlays in DIR]``."""
    rows = list(rows)
    counts = Counter(r["verdict"] for r in rows if r.get("verdict"))
    errors = sum(1 for r in rows if not r.get("verdict"))
    parts = ", ".join(f"{counts[v]} {v}" for v in sorted(counts, key=_VERDICT_ORDER.get))
    text = f"{len(rows)} image{'s' if len(rows) != 1 else ''}: {parts or 'none judged'}"
    if errors:
        text += f"; {errors} could not be read"
    text += f"; {seconds:.1f} s ({1e3 * seconds / max(len(rows), 1):.1f} ms/image)"
    if overlay_dir is not None:
        text += f"; overlays in {overlay_dir}"
    return text


_VERDICT_ORDER = {"accept": 0, "reject": 1, "no-read": 2, "fault": 3}
