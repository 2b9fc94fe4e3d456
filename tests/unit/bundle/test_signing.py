"""Ed25519 bundle signatures: keygen, sign, verify; what is refused and how the messages name the key."""
from __future__ import annotations

import json
import os
import stat

import pytest

from edgead.bundle import load_bundle, pack_bundle, update_bundle, write_bundle
from edgead.bundle.signing import (PASSPHRASE_ENV, SIGNATURE, PublicKey, TrustError, generate_key, load_signing_key,
                                   read_public_key, read_signature, verify_bundle_signature, write_key_pair)
from edgead.bundle.trust import TrustPolicy, TrustStatus, check_trust
from edgead.cli import main
from edgead.errors import ConfigError, ExitStatus

from forge import MINIMAL_META as META
from forge import minimal_files as _files
from forge import rehash


@pytest.fixture
def keys(tmp_path):
    key, pub = write_key_pair(tmp_path / "keys" / "build", "build host")
    return key, pub, read_public_key(pub)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "k" / "line1")]) == ExitStatus.OK
    out = capsys.readouterr().out
    key, pub = tmp_path / "k" / "line1.key", tmp_path / "k" / "line1.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and b"PRIVATE KEY" in key.read_bytes()
    line = pub.read_text().strip()
    assert line.startswith("edgead-ed25519 ") and line.endswith(" line1")
    assert f"key id {read_public_key(pub).key_id}" in out
    assert main(["keygen", "--out", str(tmp_path / "k" / "line1")]) == ExitStatus.BAD_INPUT
    assert "refusing to overwrite a key" in capsys.readouterr().err


def test_encrypted_key_needs_its_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    assert main(["keygen", "--out", str(tmp_path / "enc"), "--encrypt"]) == ExitStatus.OK
    assert load_signing_key(tmp_path / "enc.key").key_id == read_public_key(tmp_path / "enc.pub").key_id
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(ConfigError, match=PASSPHRASE_ENV):
        load_signing_key(tmp_path / "enc.key")
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_signing_key(tmp_path / "enc.key")


def test_a_signed_bundle_verifies_and_keeps_its_model_hash(tmp_path, keys):
    key, _, public = keys
    unsigned = write_bundle(tmp_path / "u", META, _files())
    signed = write_bundle(tmp_path / "s", META, _files(), sign_key=key)
    assert unsigned.signature is None and signed.signature.key_id == public.key_id
    assert signed.model_hash == unsigned.model_hash  # the signature sits beside the manifest, not in it
    assert verify_bundle_signature(signed.root, [public]).key_id == public.key_id
    assert check_trust(signed, TrustPolicy((public,))).status is TrustStatus.SIGNED


def test_unsigned_unknown_key_and_bad_signature_are_refused_naming_the_key(tmp_path, keys):
    key, _, public = keys
    other = generate_key("elsewhere")
    policy = TrustPolicy((public,))
    unsigned = write_bundle(tmp_path / "u", META, _files())
    with pytest.raises(TrustError, match="is not signed"):
        check_trust(unsigned, policy)
    foreign = write_bundle(tmp_path / "f", META, _files(), sign_key=other)
    with pytest.raises(TrustError, match=f"signed by key {other.key_id}, which this station does not trust "
                                         f"\\(security.trusted_keys: {public.key_id}\\)"):
        check_trust(foreign, policy)
    signed = write_bundle(tmp_path / "s", META, _files(), sign_key=key)
    manifest = json.loads((signed.root / "manifest.json").read_text())
    manifest["files"]["state.npz"] = "f" * 64  # a manifest edited after signing
    (signed.root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TrustError, match=f"the signature by key {public.key_id} does not verify"):
        verify_bundle_signature(signed.root, [public])


def test_a_signature_claiming_a_trusted_key_id_is_refused(tmp_path, keys):
    _, _, public = keys
    attacker = generate_key("attacker")
    bundle = write_bundle(tmp_path / "b", META, _files(), sign_key=attacker)
    doc = json.loads((bundle.root / SIGNATURE).read_text())
    doc["key_id"] = public.key_id  # names the trusted key, carries and signs with its own
    (bundle.root / SIGNATURE).write_text(json.dumps(doc))
    with pytest.raises(TrustError, match="tampered signature"):
        check_trust(load_bundle(bundle.root), TrustPolicy((public,)))
    doc["public_key"] = __import__("base64").b64encode(public.raw).decode()  # and the trusted public key
    (bundle.root / SIGNATURE).write_text(json.dumps(doc))
    with pytest.raises(TrustError, match="does not verify"):
        check_trust(load_bundle(bundle.root), TrustPolicy((public,)))


def test_malformed_signature_file_is_refused(tmp_path):
    bundle = write_bundle(tmp_path / "b", META, _files())
    (bundle.root / SIGNATURE).write_text("{not json")
    with pytest.raises(TrustError, match="signature.json is malformed"):
        read_signature(bundle.root)


def test_changes_drop_the_old_signature_or_re_sign(tmp_path, keys):
    key, _, public = keys
    signed = write_bundle(tmp_path / "s", META, _files(), sign_key=key)
    meta = {**signed.meta.to_dict(), "thresholds": {"image": 2.0, "pixel": 2.0, "method": "manual"}}
    assert update_bundle(signed, meta=meta).signature is None
    again = update_bundle(load_bundle(signed.root), meta=meta, sign_key=key)
    assert verify_bundle_signature(again.root, [public]).key_id == public.key_id


def test_sign_and_verify_commands_and_the_archive_keeps_the_signature(tmp_path, keys, capsys, monkeypatch):
    key, pub, public = keys
    monkeypatch.setenv("EDGEAD_CACHE_DIR", str(tmp_path / "cache"))
    bundle = write_bundle(tmp_path / "b", META, _files())
    assert main(["verify", str(bundle.root), "--trusted-key", str(pub)]) == ExitStatus.BAD_INPUT
    assert "is not signed" in capsys.readouterr().err
    assert main(["sign", str(bundle.root), "--key", str(key)]) == ExitStatus.OK
    assert main(["verify", str(bundle.root), "--trusted-key", public.to_line()]) == ExitStatus.OK
    assert f"signed by trusted key {public.key_id}" in capsys.readouterr().out
    assert main(["info", str(bundle.root), "--json"]) == ExitStatus.OK
    assert json.loads(capsys.readouterr().out)["signature"]["key_id"] == public.key_id
    archive = pack_bundle(bundle.root, tmp_path / "b.edgead")
    assert main(["verify", str(archive), "--trusted-key", str(pub)]) == ExitStatus.OK
    assert main(["sign", str(archive), "--key", str(key)]) == ExitStatus.BAD_INPUT  # sign the folder, then pack


def test_public_key_parsing_names_the_config_key(tmp_path):
    with pytest.raises(ConfigError, match=r"security.trusted_keys\[1\]: not an edgead public key"):
        read_public_key("ssh-ed25519 AAAA", where="security.trusted_keys[1]")
    with pytest.raises(ConfigError, match="not 32 bytes"):
        PublicKey.from_line("edgead-ed25519 AAAA", "k")
    with pytest.raises(ConfigError, match="cannot read public key file"):
        read_public_key(tmp_path / "missing.pub")


def test_private_key_file_mode_is_0600_even_with_a_lax_umask(tmp_path):
    old = os.umask(0)
    try:
        key, _ = write_key_pair(tmp_path / "k", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_rehash_without_signature_file_is_unsigned(tmp_path, keys):
    key, _, public = keys
    signed = write_bundle(tmp_path / "s", META, _files(), sign_key=key)
    (signed.root / SIGNATURE).unlink()
    rehash(signed.root)
    with pytest.raises(TrustError, match="is not signed"):
        check_trust(load_bundle(signed.root), TrustPolicy((public,)))
