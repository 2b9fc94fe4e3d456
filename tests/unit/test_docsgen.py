"""docs/config.md is generated from the config classes and is up to date; the example station.yaml is valid.

The example is checked two ways. Fast and always: ``load_station`` parses it strictly (every key known, every type
and enum right) without touching files. Complete: ``edgead check`` -- the command an operator runs -- on the
example with only the two station-specific files redirected by ``--set`` (``model.bundle`` to the tiny PaDiM bundle
the session fixture trains in seconds, ``reference`` to a 1280x1024 image of the size the example's ROIs are
drawn on), so the bundle hashes, the reference and the ROIs are really validated.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from edgead import docsgen

ROOT = Path(__file__).resolve().parents[2]
CONFIG_MD = ROOT / "docs" / "config.md"


def test_config_reference_is_up_to_date():
    assert CONFIG_MD.read_text() == docsgen.render(), "docs/config.md is out of date: run `make docs`"


def test_every_key_has_a_description():
    assert docsgen.undocumented() == []


def test_reference_lists_every_key_with_type_and_default():
    from edgead.daemon.config import StationConfig

    text = CONFIG_MD.read_text()
    keys = [k for s in docsgen.walk(StationConfig) for k in s.keys]
    assert len(keys) > 80
    for key in keys:
        assert f"| `{key.name}` |" in text
    assert "| `plc.protocol` | one of `modbus-client`, `modbus-server`, `modbus-tcp-client`, `modbus-tcp-server`, `ascii`, `discrete` | `ascii` |" in text
    assert "| `plc.ascii.pass_template` | string | `\"OK {part_id}\\r\\n\"` |" in text
    assert "`source`" not in text  # not a key


def test_example_is_embedded_verbatim():
    example = (ROOT / "systemd" / "station.yaml.example").read_text()
    assert example.rstrip("\n") in CONFIG_MD.read_text()


def test_parse_attributes_multi_name_and_continuation():
    doc = "X.\n\nAttributes:\n    a, b: shared\n        text.\n    c: own\n\nMore."
    assert docsgen.parse_attributes(doc) == {"a": "shared text.", "b": "shared text.", "c": "own"}


def test_check_mode_detects_a_stale_file(tmp_path):
    out = tmp_path / "config.md"
    assert docsgen.main([str(out)]) == 0
    assert docsgen.main(["--check", str(out)]) == 0
    out.write_text(out.read_text() + "edited by hand\n")
    assert docsgen.main(["--check", str(out)]) == 1


def test_docsgen_does_not_import_torch():
    code = ("import sys, edgead.docsgen as d; d.render(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_example_loads_strictly():
    from edgead.daemon.config import TriggerSource, load_station
    from edgead.plc import Protocol

    cfg = load_station(ROOT / "systemd" / "station.yaml.example")
    assert cfg.plc.protocol is Protocol.MODBUS_SERVER and cfg.trigger_source is TriggerSource.PLC
    assert [r.name for r in cfg.rois] == ["bore-left", "bore-right"]
    assert cfg.security.trusted_keys == ("/etc/edgead/keys/build-host.pub",) and not cfg.security.allow_unsigned


def test_example_passes_edgead_check(padim_bundle, bundle_key, tmp_path, capsys):
    import cv2

    from edgead.cli import main

    reference = tmp_path / "reference.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(reference), rng.integers(0, 255, (1024, 1280), dtype=np.uint8))
    # the test bundle was trained for another station: only the documented override lets it pass
    code = main(["check", str(ROOT / "systemd" / "station.yaml.example"),
                 "--set", f"model.bundle={padim_bundle.bundle.root}", "--set", f"reference={reference}",
                 "--set", f"security.trusted_keys=['{bundle_key.line}']", "--set", "model.geometry_check=warn"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"signed by trusted key {bundle_key.key_id}" in out and "warning: model.geometry_check is warn" in out
    assert "2 ROI(s)" in out and "plc modbus-server" in out
