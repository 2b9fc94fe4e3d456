"""``edgead keygen | sign``: Ed25519 keys for bundles, and signing a bundle on the build host."""
from __future__ import annotations

import argparse
import os

from edgead.errors import ExitStatus

SIGN_KEY_HELP = ("sign the written bundle with this Ed25519 private key (from `edgead keygen`; passphrase from "
                 "$EDGEAD_SIGN_KEY_PASSPHRASE); stations refuse unsigned bundles unless security.allow_unsigned")


def add_sign_key(p: argparse.ArgumentParser) -> None:
    """The ``--sign-key KEY`` option of every command that writes a bundle."""
    p.add_argument("--sign-key", default=None, metavar="KEY", help=SIGN_KEY_HELP)


def signing_key(args):
    """The loaded key of ``--sign-key`` (loaded before any work, so a bad key fails at once), or None."""
    from edgead.bundle.signing import load_signing_key

    return load_signing_key(args.sign_key) if getattr(args, "sign_key", None) else None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keygen", help="make an Ed25519 key pair for signing bundles (NAME.key, NAME.pub)")
    p.add_argument("--out", required=True, metavar="NAME", help="writes NAME.key (private, 0600) and NAME.pub")
    p.add_argument("--comment", default=None, help="text on the public key line (default: NAME)")
    p.add_argument("--encrypt", action="store_true",
                   help="encrypt the private key with the passphrase in $EDGEAD_SIGN_KEY_PASSPHRASE")
    p.set_defaults(handler=cmd_keygen)

    p = sub.add_parser("sign", help="sign a bundle directory's manifest (replaces an older signature)")
    p.add_argument("bundle", help="the bundle directory (verified first)")
    p.add_argument("--key", required=True, help="Ed25519 private key from `edgead keygen`")
    p.set_defaults(handler=cmd_sign)

    p = sub.add_parser("verify", help="check a bundle's hashes and that a trusted key signed it")
    p.add_argument("bundle")
    p.add_argument("--trusted-key", action="append", required=True, metavar="PUB",
                   help="a public key file or 'edgead-ed25519 ...' line (repeatable)")
    p.set_defaults(handler=cmd_verify)


def cmd_keygen(args) -> int:
    from edgead.bundle.signing import PASSPHRASE_ENV, read_public_key, write_key_pair
    from edgead.errors import ConfigError

    passphrase = None
    if args.encrypt:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if not passphrase:
            raise ConfigError(f"--encrypt needs the passphrase in ${PASSPHRASE_ENV}")
        passphrase = passphrase.encode()
    key_path, pub_path = write_key_pair(args.out, args.comment or "", passphrase)
    pub = read_public_key(pub_path)
    print(f"private key {key_path} (keep it on the build host, mode 0600)\npublic key  {pub_path} "
          f"(key id {pub.key_id}): list it under security.trusted_keys on the stations")
    return ExitStatus.OK


def cmd_sign(args) -> int:
    from pathlib import Path

    from edgead.bundle import MANIFEST, load_bundle
    from edgead.bundle.signing import load_signing_key, sign_manifest
    from edgead.errors import BundleError

    key = load_signing_key(args.key)
    if Path(args.bundle).is_file():
        raise BundleError(f"{args.bundle} is an archive", hint="sign the bundle directory, then `edgead pack` it")
    bundle = load_bundle(args.bundle)
    sig = sign_manifest(bundle.root, key, MANIFEST)
    print(f"bundle {bundle.root} ({bundle.model_hash[:12]}) signed by key {sig.key_id}")
    return ExitStatus.OK


def cmd_verify(args) -> int:
    from edgead.bundle import load_bundle
    from edgead.bundle.signing import read_public_key
    from edgead.bundle.trust import TrustPolicy, check_trust

    keys = tuple(read_public_key(k, where=f"--trusted-key {k}") for k in args.trusted_key)
    bundle = load_bundle(args.bundle)
    report = check_trust(bundle, TrustPolicy(trusted_keys=keys))
    print(f"bundle {bundle.root} ({bundle.model_hash[:12]}): hashes ok, {report.note()}")
    return ExitStatus.OK
