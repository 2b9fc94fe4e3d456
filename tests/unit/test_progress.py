"""edgead.progress: a tqdm bar on a terminal, lines in a log, nothing when quiet, and no tqdm needed (station)."""
from __future__ import annotations

import io
import sys

import pytest

from edgead.progress import Progress, progress, track


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_in_a_log_notes_and_tenths():
    out = io.StringIO()
    with progress(20, "station", unit="part", stream=out, lines=4) as bar:
        bar.note("started")
        for i in range(20):
            bar.set_postfix(f"ok {i + 1}")
            bar.update()
    lines = out.getvalue().splitlines()
    assert lines[0] == "station 0/20: started"
    assert [line.split(" part")[0] for line in lines[1:]] == ["station: 5/20", "station: 10/20", "station: 15/20",
                                                              "station: 20/20"]
    assert lines[-1].endswith("ok 20") and "\r" not in out.getvalue()


def test_quiet_prints_nothing(monkeypatch):
    out = io.StringIO()
    with progress(3, "x", enabled=False, stream=out, lines=3) as bar:
        bar.note("a")
        bar.update(3)
    monkeypatch.setenv("EDGEAD_QUIET", "1")
    with progress(3, "x", stream=out, lines=3) as bar:
        bar.note("b")
        bar.update(3)
    assert out.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar_with_notes_above_it():
    pytest.importorskip("tqdm")
    out = Tty()
    with progress(4, "convert", unit="candidate", stream=out) as bar:
        assert bar.is_bar
        bar.update()
        bar.note("int8: gate passed")
    text = out.getvalue()
    assert "\r" in text and "convert" in text and "convert 1/4: int8: gate passed" in text


def test_without_tqdm_a_terminal_gets_lines(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the station has no tqdm: importing it fails
    out = Tty()
    bar = Progress(2, "deploy", stream=out)
    assert not bar.is_bar
    bar.update()
    bar.note("verify: 12 files")
    bar.close()
    assert out.getvalue() == "deploy 1/2: verify: 12 files\n"


def test_track_yields_every_item():
    assert list(track(range(5), "t", enabled=False)) == [0, 1, 2, 3, 4]


def test_the_station_runtime_does_not_import_tqdm():
    import subprocess

    code = ("import sys, edgead.daemon.station, edgead.progress; "
            "assert 'tqdm' not in sys.modules, 'the station imported tqdm'")
    subprocess.run([sys.executable, "-c", code], check=True)
