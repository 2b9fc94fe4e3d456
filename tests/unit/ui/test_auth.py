"""The operator page's users: scrypt hashes in a password file, Basic credentials, roles."""
from __future__ import annotations

import base64
import stat

import pytest

from edgead.errors import ConfigError
from edgead.ui.auth import Authenticator, Role, basic_credentials, hash_password, load_users, set_user, verify_password


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_hash_verifies_only_the_right_password_and_salts_each_hash():
    h = hash_password("s3cret", n=1 << 10)
    assert h.startswith("scrypt$1024$8$1$") and "s3cret" not in h
    assert verify_password("s3cret", h) and not verify_password("s3cre", h) and not verify_password("", h)
    assert hash_password("s3cret", n=1 << 10) != h
    assert not verify_password("s3cret", "md5$abc") and not verify_password("s3cret", "scrypt$x$y")


def test_password_file_is_private_and_roles_gate_writes(tmp_path):
    path = tmp_path / "ops"
    set_user(path, "anna", "pw1")
    set_user(path, "vic", "pw2", Role.VIEWER)
    set_user(path, "anna", "pw3")  # replaced, not duplicated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not any(pw in path.read_text() for pw in ("pw1", "pw2", "pw3"))  # only their hashes
    users = load_users(path)
    assert sorted(users) == ["anna", "vic"] and users["vic"].role is Role.VIEWER
    auth = Authenticator(path)
    assert auth.check(_basic("anna", "pw3")).name == "anna"
    assert auth.check(_basic("anna", "pw1")) is None
    assert auth.check(_basic("vic", "pw2")) is None  # not an operator
    assert auth.check(_basic("vic", "pw2"), need=Role.VIEWER).name == "vic"
    assert auth.check(None) is None and auth.check("Bearer x") is None and auth.check(_basic("bob", "x")) is None
    set_user(path, "bob", "pw4")  # picked up without a restart
    assert auth.check(_basic("bob", "pw4")).name == "bob"
    assert Authenticator(None).check(_basic("anna", "pw3")) is None


def test_bad_files_and_names_are_config_errors(tmp_path):
    bad = tmp_path / "ops"
    bad.write_text("anna:admin:scrypt$1\n")
    with pytest.raises(ConfigError, match="line 1"):
        load_users(bad)
    with pytest.raises(ConfigError, match="edgead ui-passwd"):
        load_users(tmp_path / "missing")
    with pytest.raises(ConfigError, match="user name"):
        set_user(tmp_path / "x", "a b", "pw")
    with pytest.raises(ConfigError, match="empty"):
        set_user(tmp_path / "x", "anna", "")


def test_basic_credentials_parsing():
    assert basic_credentials(_basic("anna", "a:b")) == ("anna", "a:b")
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Basic " + base64.b64encode(b"nocolon").decode()) is None


def test_check_and_ui_refuse_a_broken_operators_file(tmp_path, capsys):
    from edgead.cli import main

    (tmp_path / "ops").write_text("anna:root:plain\n")
    cfg = tmp_path / "station.yaml"
    cfg.write_text("ui: {operators_file: ops, listen: '127.0.0.1:0'}\nstorage: {database: r.sqlite}\n")
    assert main(["ui", str(cfg)]) == 3
    assert "ui.operators_file" in capsys.readouterr().err
