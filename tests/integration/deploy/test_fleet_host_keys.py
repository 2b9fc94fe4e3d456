"""Fleet host keys against the real localhost sshd: an ``accept-new`` station does not weaken the others, and a
changed key is refused on a strict station. Runs ansible-core with edgead's own inventory and environment and a
one-task playbook (no release is copied), so it takes seconds."""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from edgead.deploy import fleet

from .conftest import STATION_PYTHON

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def _ansible(needs_ansible):
    """Every test here runs ansible-core."""


def _changed_key_known_hosts(path, port: int) -> str:
    """A known_hosts naming another key for the sshd's address: what a station whose key changed looks like."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path) + ".other"], check=True)
    other = (path.parent / (path.name + ".other.pub")).read_text().split()[:2]
    text = f"[127.0.0.1]:{port} {other[0]} {other[1]}\n"
    path.write_text(text)
    return text


def test_one_accept_new_station_does_not_turn_off_checking_for_the_others(tmp_path, sshd):
    changed = tmp_path / "changed_known_hosts"
    before = _changed_key_known_hosts(changed, sshd["port"])
    fresh = tmp_path / "fresh_known_hosts"  # accept-new: the first contact records the key
    common = {"host": "127.0.0.1", "port": sshd["port"], "user": "root", "identity": sshd["key"],
              "python": STATION_PYTHON}
    inv_path = tmp_path / "stations.yaml"
    inv_path.write_text(yaml.safe_dump({"stations": {
        "new-station": {**common, "config": "a.yaml", "host_key_policy": "accept-new", "known_hosts": str(fresh)},
        "changed-key": {**common, "config": "b.yaml", "host_key_policy": "strict", "known_hosts": str(changed)},
        "known-key": {**common, "config": "c.yaml", "host_key_policy": "strict",
                      "known_hosts": sshd["known_hosts"]}}}))
    stations = fleet.load_inventory(inv_path)
    waves = fleet.plan_waves(stations)
    inventory = fleet.ansible_inventory(waves, {s.name: tmp_path / "rel" / s.name for s in stations}, 60)
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{"name": "reach", "hosts": "all", "gather_facts": False,
                                                        "tasks": [{"ansible.builtin.raw": "true"}]}]))
    proc = subprocess.run([fleet.ansible_playbook_bin(), "-i", str(tmp_path / "inventory.yml"),
                           str(tmp_path / "play.yml")], capture_output=True, text=True, timeout=240,
                          env=fleet.ansible_env(tmp_path / "ansible"))
    out = proc.stdout + proc.stderr

    def recap(name: str) -> dict:
        m = re.search(rf"^{name}\s*:\s*(.*)$", proc.stdout, re.MULTILINE)
        assert m, out
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}

    assert recap("new-station")["ok"] == 1, out
    assert recap("known-key")["ok"] == 1, out
    assert recap("changed-key")["unreachable"] == 1 and recap("changed-key")["ok"] == 0, out
    why = fleet.unreachable_hosts(proc.stdout)
    assert list(why) == ["changed-key"]
    assert "Host key verification failed" in why["changed-key"] or "IDENTIFICATION HAS CHANGED" in why["changed-key"]
    # accept-new recorded the key, in that station's known_hosts only
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{sshd['port']}", "-f", str(fresh)], capture_output=True)
    assert found.returncode == 0
    assert changed.read_text() == before  # the changed key was not replaced or accepted
