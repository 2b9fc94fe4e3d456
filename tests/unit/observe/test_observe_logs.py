"""setup_logging: JSON lines with extras, text lines, auto mode, journald priority prefix."""
from __future__ import annotations

import io
import json
import logging
import os
import sys

import pytest

from edgead.errors import ConfigError
from edgead.observe.logs import LogFormat, setup_logging


@pytest.fixture(autouse=True)
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_json_lines_carry_extras_and_exceptions():
    buf = io.StringIO()
    setup_logging("DEBUG", json=True, stream=buf)
    log = logging.getLogger("edgead.test")
    log.info("part %s done", "A1", extra={"part_id": "A1", "verdict": "reject", "total_ms": 12.5})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed", extra={"part_id": "A2"})
    first, second = (json.loads(line) for line in buf.getvalue().splitlines())
    assert first["msg"] == "part A1 done" and first["level"] == "INFO" and first["logger"] == "edgead.test"
    assert first["part_id"] == "A1" and first["verdict"] == "reject" and first["total_ms"] == 12.5
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exc"]


def test_text_lines_and_reconfiguration():
    buf1, buf2 = io.StringIO(), io.StringIO()
    setup_logging("INFO", json=LogFormat.TEXT, stream=buf1)
    setup_logging("WARNING", json="text", stream=buf2)  # replaces the first handler
    log = logging.getLogger("edgead.test")
    log.info("hidden")
    log.warning("late part", extra={"part_id": "B7"})
    assert buf1.getvalue() == ""
    line = buf2.getvalue().strip()
    assert "WARNING" in line and "edgead.test: late part part_id=B7" in line
    assert sum(getattr(h, "_edgead_handler", False) for h in logging.getLogger().handlers) == 1


def test_auto_is_json_off_a_terminal_and_bad_values_are_refused():
    buf = io.StringIO()  # not a tty
    setup_logging("INFO", json=LogFormat.AUTO, stream=buf)
    logging.getLogger("edgead.test").info("x")
    assert json.loads(buf.getvalue())["msg"] == "x"
    with pytest.raises(ConfigError, match="log level"):
        setup_logging("LOUD")
    with pytest.raises(ConfigError, match="log format"):
        setup_logging("INFO", json="xml")


def test_journal_stream_gets_priority_prefix(tmp_path, monkeypatch):
    path = tmp_path / "journal.log"
    with open(path, "w") as fh:
        st = os.fstat(fh.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        setup_logging("INFO", json=LogFormat.JSON, stream=fh)
        logging.getLogger("edgead.test").error("plc gone", extra={"port": "/dev/ttyUSB0"})
    line = path.read_text().strip()
    assert line.startswith("<3>{")
    assert json.loads(line[3:])["port"] == "/dev/ttyUSB0"


def test_a_default_stderr_handler_is_replaced_so_no_line_is_written_twice(capsys):
    """`logging.basicConfig` left a plain stderr handler beside the daemon's: every line came out twice, the second
    copy without its journald priority."""
    root = logging.getLogger()
    leftover = logging.StreamHandler(sys.stderr)
    root.addHandler(leftover)
    out = io.StringIO()
    try:
        setup_logging("INFO", json=LogFormat.TEXT, stream=out)
        assert leftover not in root.handlers
        logging.getLogger("edgead.test").warning("camera lost")
    finally:
        root.removeHandler(leftover)
    assert out.getvalue().count("camera lost") == 1 and "camera lost" not in capsys.readouterr().err


def test_passwords_in_urls_are_redacted_in_every_line():
    out = io.StringIO()
    setup_logging("INFO", json=LogFormat.JSON, stream=out)
    logging.getLogger("edgead.test").error("camera %s lost", "rtsp://admin:hunter2@10.0.0.5/s1?token=abc")
    line = json.loads(out.getvalue())
    assert "hunter2" not in out.getvalue() and "abc" not in line["msg"]
    assert line["msg"] == "camera rtsp://admin:***@10.0.0.5/s1?token=*** lost"
