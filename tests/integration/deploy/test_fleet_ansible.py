"""Fleet roll-out in waves through ansible-core: two stations (two prefixes) behind the localhost sshd."""
from __future__ import annotations

import os

import pytest
import yaml

from edgead.deploy import ReleaseOptions, fleet
from edgead.errors import DeployError

from .conftest import STATION_PYTHON

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]  # ~6 min here: ansible copies two 63 MB releases


@pytest.fixture(autouse=True)
def _ansible(needs_ansible):
    """Every test here runs ansible-core."""


def _inventory(tmp_path, sshd, venv_seed, prefixes, make_config, dataset, canary_defective=None):
    defaults = {"user": "root", "identity": sshd["key"], "python": STATION_PYTHON, "service": "direct",
                "venv_seed": str(venv_seed), "host_key_policy": "accept-new", "known_hosts": sshd["known_hosts"],
                "selftest_data": str(dataset / "parts")}
    canary = {"host": "127.0.0.1", "port": sshd["port"], "config": str(make_config("a.yaml")), "canary": True,
              "prefix": str(prefixes("station-a"))}
    if canary_defective:
        canary["selftest_defective"] = [canary_defective]
    stations = {"line-a": canary,
                "line-b": {"host": "127.0.0.1", "port": sshd["port"], "config": str(make_config("b.yaml")),
                           "wave": 1, "prefix": str(prefixes("station-b"))}}
    path = tmp_path / "stations.yaml"
    path.write_text(yaml.safe_dump({"defaults": defaults, "stations": stations}))
    return path


def test_two_stations_roll_out_in_waves(needs_daemon, tmp_path, sshd, venv_seed, wheel, prefixes, make_config,
                                        dataset):
    inv = _inventory(tmp_path, sshd, venv_seed, prefixes, make_config, dataset)
    report = fleet.roll_out(inv, ReleaseOptions(wheel=str(wheel)), health_timeout_s=90)
    assert report.waves == [["line-a"], ["line-b"]]
    assert [report.outcome(n) for n in ("line-a", "line-b")] == ["ok", "ok"]
    for name in ("station-a", "station-b"):
        assert os.path.islink(tmp_path / name / "current")


def test_failing_canary_stops_the_roll_out(tmp_path, sshd, venv_seed, wheel, prefixes, make_config, dataset):
    # the canary's "known-defective" sample is a good part: its self-test fails on the station
    good_part = dataset / "parts" / "test" / "good" / "000.png"
    inv = _inventory(tmp_path, sshd, venv_seed, prefixes, make_config, dataset, canary_defective=str(good_part))
    with pytest.raises(DeployError) as err:
        fleet.roll_out(inv, ReleaseOptions(wheel=str(wheel)), health_timeout_s=90)
    text = str(err.value)
    assert "line-a" in text and "failed" in text and "known-defective sample defective/" in text
    assert "line-b" in text and "not run" in text
    assert not (tmp_path / "station-b").exists()  # the second wave never touched its station
    assert not os.path.islink(tmp_path / "station-a" / "current")
