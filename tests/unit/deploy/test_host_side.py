"""Host side: SSH command lines, inventory parsing, wave planning, the generated ansible inventory/playbook."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgead.deploy import fleet
from edgead.deploy.release import ReleaseOptions, build_release
from edgead.deploy.ssh import HostKeyPolicy, parse_host, scp_argv, ssh_argv
from edgead.errors import ConfigError, DeployError


def test_parse_host():
    t = parse_host("root@10.0.0.7:2222", identity="k")
    assert (t.user, t.host, t.port, t.identity) == ("root", "10.0.0.7", 2222, "k")
    assert parse_host("station").user is None and parse_host("station").port == 22
    with pytest.raises(DeployError, match="port 'x'"):
        parse_host("root@h:x")


def test_ssh_and_scp_argv_are_batch_and_quoted():
    t = parse_host("root@h:2200", identity="/k", host_key_policy=HostKeyPolicy.ACCEPT_NEW, known_hosts="/kh")
    argv = ssh_argv(t, ["python3", "/opt/a b/x.py", "--flag"])
    assert argv[:3] == ["ssh", "-p", "2200"] and "BatchMode=yes" in argv and "ControlMaster=no" in argv
    assert "StrictHostKeyChecking=accept-new" in argv and "UserKnownHostsFile=/kh" in argv
    assert argv[-1] == "python3 '/opt/a b/x.py' --flag"
    scp = scp_argv(t, "/tmp/rel", "/opt/edgead/releases/.incoming")
    assert scp[:6] == ["scp", "-q", "-r", "-p", "-P", "2200"] and scp[-1] == "root@h:/opt/edgead/releases/.incoming/"
    off = ssh_argv(parse_host("h", host_key_policy=HostKeyPolicy.OFF), ["true"])
    assert "UserKnownHostsFile=/dev/null" in off


def _inventory(tmp_path, stations, defaults=None):
    import yaml

    path = tmp_path / "stations.yaml"
    path.write_text(yaml.safe_dump({"defaults": defaults or {"user": "root"}, "stations": stations}))
    return path


def test_inventory_and_waves(tmp_path):
    inv = _inventory(tmp_path, {"a": {"host": "h1", "config": "a.yaml", "wave": 2},
                                "b": {"host": "h2", "config": "b.yaml", "canary": True},
                                "c": {"host": "h3", "config": "c.yaml"}})
    stations = fleet.load_inventory(inv)
    assert stations[0].config == str(tmp_path / "a.yaml") and stations[0].user == "root"
    assert [[s.name for s in w] for w in fleet.plan_waves(stations)] == [["b"], ["c"], ["a"]]


def test_inventory_refuses_unknown_keys_and_missing_host(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'hots'"):
        fleet.load_inventory(_inventory(tmp_path, {"a": {"hots": "h", "config": "a.yaml"}}))
    with pytest.raises(ConfigError, match="no 'host'"):
        fleet.load_inventory(_inventory(tmp_path, {"a": {"config": "a.yaml"}}))


def test_ansible_inventory_and_playbook(tmp_path):
    stations = fleet.load_inventory(_inventory(tmp_path, {
        "a": {"host": "h1", "config": "a.yaml", "canary": True, "python": "/usr/bin/python3.10"},
        "b": {"host": "h2", "port": 2222, "config": "b.yaml"}}))
    waves = fleet.plan_waves(stations)
    rels = {"a": tmp_path / "ra" / "R1", "b": tmp_path / "rb" / "R2"}
    inv = fleet.ansible_inventory(waves, rels, 60)
    a = inv["all"]["children"]["wave_0"]["hosts"]["a"]
    assert a["ansible_python_interpreter"] == "/usr/bin/python3.10"  # always set: no interpreter discovery
    assert a["edgead_steps_argv"][:3] == ["/usr/bin/python3.10",
                                          "/opt/edgead/releases/.incoming/R1/tools/station_steps.py", "deploy"]
    assert inv["all"]["children"]["wave_1"]["hosts"]["b"]["ansible_port"] == 2222
    plays = fleet.playbook(len(waves), tmp_path)
    assert [p["hosts"] for p in plays] == ["wave_0", "wave_1"] and all(p["any_errors_fatal"] for p in plays)
    env = fleet.ansible_env(tmp_path / "home")
    assert "ControlMaster=no" in env["ANSIBLE_SSH_ARGS"] and env["ANSIBLE_HOME"] == str(tmp_path / "home")


def test_host_key_policy_is_per_station_and_never_off_globally(tmp_path, monkeypatch):
    """One accept-new and one off station: the strict one keeps strict checking and its own known_hosts."""
    stations = fleet.load_inventory(_inventory(tmp_path, {
        "new": {"host": "h1", "config": "a.yaml", "host_key_policy": "accept-new", "known_hosts": "kh-new"},
        "lab": {"host": "h2", "config": "b.yaml", "host_key_policy": "off"},
        "prod": {"host": "h3", "config": "c.yaml", "known_hosts": "kh-prod"}}))
    inv = fleet.ansible_inventory(fleet.plan_waves(stations), {s.name: tmp_path / s.name for s in stations}, 60)
    hosts = inv["all"]["children"]["wave_0"]["hosts"]
    assert hosts["new"]["ansible_ssh_extra_args"] == \
        f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={tmp_path / 'kh-new'}"
    assert hosts["lab"]["ansible_ssh_extra_args"] == "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    assert hosts["prod"]["ansible_ssh_extra_args"] == \
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={tmp_path / 'kh-prod'}"
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")  # a caller's environment cannot weaken it either
    monkeypatch.setenv("ANSIBLE_SSH_COMMON_ARGS", "-o StrictHostKeyChecking=no")
    env = fleet.ansible_env(tmp_path / "home")
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True" and "ANSIBLE_SSH_COMMON_ARGS" not in env
    assert "StrictHostKeyChecking" not in env["ANSIBLE_SSH_ARGS"] and "KnownHosts" not in env["ANSIBLE_SSH_ARGS"]


def test_unreachable_hosts_are_read_from_ansible_output():
    out = ('fatal: [line-b]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host via ssh: '
           '@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\\r\\nHost key verification failed.", '
           '"unreachable": true}\nok: [line-a]\n')
    got = fleet.unreachable_hosts(out)
    assert list(got) == ["line-b"] and got["line-b"].endswith("Host key verification failed.")


def test_release_refuses_the_train_extra_and_a_missing_bundle(tmp_path):
    cfg = tmp_path / "station.yaml"
    cfg.write_text("model: {bundle: nowhere}\n")
    with pytest.raises(DeployError, match="extra 'train' cannot go to a station"):
        build_release(cfg, tmp_path / "out", ReleaseOptions(extras=("train",)))
    with pytest.raises(DeployError, match="edgead has no extra 'modbus'") as err:  # not an extra any more
        build_release(cfg, tmp_path / "out", ReleaseOptions(extras=("station", "modbus")))
    assert "genicam, trt, jetson, mqtt, opcua" in str(err.value)
    with pytest.raises(DeployError, match="refusing to deploy bundle"):
        build_release(cfg, tmp_path / "out", ReleaseOptions())
    assert not (tmp_path / "out").exists()


def test_fleet_report_summary():
    report = fleet.FleetReport([["a"], ["b"]], {"a": {"ok": False, "error": "selftest: wrong"}}, ansible_rc=2)
    assert not report.ok and report.outcome("b") == "not run"
    assert "a" in report.summary() and "failed" in report.summary() and Path  # noqa


def test_release_refuses_extras_without_the_bundles_runtime(tmp_path):
    import contract_model  # tests/unit/convert, on sys.path through tests/conftest.py

    from edgead.bundle import load_bundle, update_bundle

    bundle = load_bundle(contract_model.build_bundle(tmp_path / "fp32"))
    meta = bundle.meta.to_dict()
    meta["conversion"] = {"target": "x86-cpu", "backend": "openvino", "precision": "int8",
                          "openvino": {"inference_precision": "f32"}}
    converted = update_bundle(bundle, meta, out_dir=tmp_path / "ov")
    cfg = tmp_path / "station.yaml"
    cfg.write_text(f"model: {{bundle: {converted.root}}}\nsecurity: {{allow_unsigned: true}}\n")  # extras here
    with pytest.raises(DeployError, match="converted to run on openvino") as err:
        build_release(cfg, tmp_path / "out", ReleaseOptions(extras=("station",)))
    assert err.value.hint == "deploy with --extras station,openvino"
    assert not (tmp_path / "out").exists()
