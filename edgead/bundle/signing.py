"""Ed25519 signatures of bundles (with the ``cryptography`` package): the signature covers ``manifest.json``, and
the manifest covers every file, so one signature vouches for the model, its metadata, thresholds, geometry and state.

Keys:
- a **private key** is a PKCS#8 PEM file (``NAME.key``, mode 0600), optionally encrypted with a passphrase read
  from the environment variable :data:`PASSPHRASE_ENV`. It lives on the build host only.
- a **public key** is one line, ``edgead-ed25519 <base64 of the 32 raw bytes> [comment]`` (``NAME.pub``), which a
  station config lists (inline or by path) under ``security.trusted_keys``.
- the **key id** is the first 16 hex digits of the sha256 of the raw public key; messages name it.

``signature.json`` sits beside ``manifest.json`` (neither lists the other)::

    {"format_version": 1, "algorithm": "ed25519", "key_id": "...", "public_key": "<base64>",
     "manifest_sha256": "...", "signed_utc": "...", "signature": "<base64 of 64 bytes>"}

The signed message is ``DOMAIN + manifest.json's bytes``. The embedded public key only names the signer: a bundle
is trusted when the key id is one of the station's trusted keys *and* the signature verifies with that trusted key.

Example:
    >>> key = generate_key("build-host")                                      # doctest: +SKIP
    >>> sign_bundle("runs/bundle", key)                                        # doctest: +SKIP
    >>> verify_bundle_signature("runs/bundle", [key.public])                   # doctest: +SKIP
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

from edgead.errors import BundleError, ConfigError

SIGNATURE = "signature.json"
ALGORITHM = "ed25519"
PUBLIC_PREFIX = "edgead-ed25519"
DOMAIN = b"edgead-bundle-signature-v1\n"
PASSPHRASE_ENV = "EDGEAD_SIGN_KEY_PASSPHRASE"
SIGNATURE_FORMAT = 1
MAX_SIGNATURE_BYTES = 64 * 1024

KeySource = Union["SigningKey", str, os.PathLike]


class TrustError(BundleError):
    """A bundle is unsigned, signed by a key the station does not trust, or its signature does not verify."""


def _ed25519():
    from cryptography.hazmat.primitives.asymmetric import ed25519  # a core dependency, imported when used

    return ed25519


def _serialization():
    from cryptography.hazmat.primitives import serialization

    return serialization


def key_id_of(raw: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key: 16 hex digits of its sha256."""
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    """A trusted (or signing) public key.

    Attributes:
        raw: the 32 raw Ed25519 bytes.
        comment: free text (who owns it, where the private key lives).
    """

    raw: bytes
    comment: str = ""

    @property
    def key_id(self) -> str:
        return key_id_of(self.raw)

    def to_line(self) -> str:
        """``edgead-ed25519 BASE64 comment``."""
        line = f"{PUBLIC_PREFIX} {base64.b64encode(self.raw).decode()}"
        return f"{line} {self.comment}" if self.comment else line

    @classmethod
    def from_line(cls, line: str, where: str) -> "PublicKey":
        """Parse one public-key line.

        Raises:
            ConfigError: naming ``where`` when it is not an edgead Ed25519 public key.
        """
        parts = line.strip().split(None, 2)
        if len(parts) < 2 or parts[0] != PUBLIC_PREFIX:
            raise ConfigError(f"{where}: not an edgead public key (expected '{PUBLIC_PREFIX} BASE64 [comment]')",
                              hint="use the .pub file written by `edgead keygen`")
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(f"{where}: the key is not 32 bytes of base64", hint="copy the .pub line unchanged")
        return cls(raw, parts[2] if len(parts) > 2 else "")

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``message``."""
        from cryptography.exceptions import InvalidSignature

        try:
            _ed25519().Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def read_public_key(source: str | os.PathLike, base_dir: Path | None = None, where: str = "public key") -> PublicKey:
    """A public key from an inline ``edgead-ed25519 ...`` line or from a ``.pub`` file (relative to ``base_dir``).

    Raises:
        ConfigError: an unreadable file or a malformed key, naming ``where``.
    """
    text = str(source)
    path = Path(os.path.expanduser(text))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if text.startswith(PUBLIC_PREFIX + " ") or (" " in text.strip() and not path.exists()):
        return PublicKey.from_line(text, where)  # a key line (an ssh key pasted by mistake is named as such)
    try:
        content = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read public key file {path} ({exc.strerror or exc})",
                          hint="give the .pub file written by `edgead keygen`, or its line inline") from exc
    lines = [ln for ln in content.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise ConfigError(f"{where}: {path} holds {len(lines)} keys; one .pub file holds one key",
                          hint="list each key separately")
    return PublicKey.from_line(lines[0], f"{where} ({path})")


class SigningKey:
    """A private Ed25519 key loaded for signing; ``public`` is its :class:`PublicKey`."""

    def __init__(self, private, comment: str = ""):
        serialization = _serialization()
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = PublicKey(raw, comment)

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def private_pem(self, passphrase: bytes | None = None) -> bytes:
        s = _serialization()
        enc = s.BestAvailableEncryption(passphrase) if passphrase else s.NoEncryption()
        return self._private.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, enc)


def generate_key(comment: str = "") -> SigningKey:
    """A new random Ed25519 key pair."""
    return SigningKey(_ed25519().Ed25519PrivateKey.generate(), comment)


def write_key_pair(stem: str | os.PathLike, comment: str = "", passphrase: bytes | None = None
                   ) -> tuple[Path, Path]:
    """Generate a key pair into ``STEM.key`` (0600) and ``STEM.pub``; never overwrites.

    Returns:
        (private key path, public key path).

    Raises:
        ConfigError: either file exists already.
    """
    stem = Path(stem)
    key_path, pub_path = stem.with_name(stem.name + ".key"), stem.with_name(stem.name + ".pub")
    for p in (key_path, pub_path):
        if p.exists():
            raise ConfigError(f"{p} exists already; refusing to overwrite a key",
                              hint="choose another name, or move the old key away deliberately")
    key = generate_key(comment or stem.name)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_pem(passphrase))
    pub_path.write_text(key.public.to_line() + "\n")
    return key_path, pub_path


def load_signing_key(source: KeySource) -> SigningKey:
    """Load a private key file written by :func:`write_key_pair` (passphrase from :data:`PASSPHRASE_ENV`).

    Raises:
        ConfigError: unreadable, not an Ed25519 PKCS#8 key, or encrypted without the passphrase.
    """
    if isinstance(source, SigningKey):
        return source
    path = Path(os.path.expanduser(str(source)))
    s, ed = _serialization(), _ed25519()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--sign-key {path}: cannot read it ({exc.strerror or exc})",
                          hint="make one with `edgead keygen --out NAME`") from exc
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        private = s.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError as exc:
        raise ConfigError(f"--sign-key {path}: the key is encrypted", hint=f"set {PASSPHRASE_ENV}") from exc
    except ValueError as exc:
        raise ConfigError(f"--sign-key {path}: not a PEM private key, or a wrong passphrase ({exc})",
                          hint="use the .key file written by `edgead keygen`") from exc
    if not isinstance(private, ed.Ed25519PrivateKey):
        raise ConfigError(f"--sign-key {path}: not an Ed25519 key", hint="make one with `edgead keygen`")
    return SigningKey(private, path.stem)


@dataclass(frozen=True)
class Signature:
    """A parsed ``signature.json``."""

    key_id: str
    public_key: PublicKey
    manifest_sha256: str
    signature: bytes
    signed_utc: str = ""


def signed_message(manifest_bytes: bytes) -> bytes:
    return DOMAIN + manifest_bytes


def sign_manifest(root: str | os.PathLike, key: KeySource, manifest_name: str = "manifest.json") -> Signature:
    """Sign ``root/manifest.json`` and write ``root/signature.json`` (replacing an older signature).

    Returns:
        The new signature.
    """
    key = load_signing_key(key)
    root = Path(root)
    manifest = (root / manifest_name).read_bytes()
    sig = key.sign(signed_message(manifest))
    doc = {"format_version": SIGNATURE_FORMAT, "algorithm": ALGORITHM, "key_id": key.key_id,
           "public_key": base64.b64encode(key.public.raw).decode(),
           "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
           "signed_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "signature": base64.b64encode(sig).decode()}
    tmp = root / f".{SIGNATURE}.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, root / SIGNATURE)
    return read_signature(root)


def read_signature(root: str | os.PathLike) -> Signature | None:
    """Parse ``root/signature.json``; None when the bundle is unsigned.

    Raises:
        TrustError: the file is a link, too large, or malformed.
    """
    from edgead.bundle.paths import contained

    root = Path(root)
    if not os.path.lexists(root / SIGNATURE):
        return None
    path = contained(root, SIGNATURE, f"bundle {root}")
    where = f"bundle {root}: {SIGNATURE}"
    if path.stat().st_size > MAX_SIGNATURE_BYTES:
        raise TrustError(f"{where} is larger than {MAX_SIGNATURE_BYTES} bytes", hint="do not use this bundle")
    try:
        doc = json.loads(path.read_text())
        if doc.get("format_version") != SIGNATURE_FORMAT or doc.get("algorithm") != ALGORITHM:
            raise ValueError(f"format {doc.get('format_version')!r}, algorithm {doc.get('algorithm')!r}")
        public = PublicKey(base64.b64decode(doc["public_key"], validate=True))
        sig = base64.b64decode(doc["signature"], validate=True)
        if len(public.raw) != 32 or len(sig) != 64:
            raise ValueError("wrong key or signature length")
        return Signature(str(doc["key_id"]), public, str(doc["manifest_sha256"]), sig, str(doc.get("signed_utc", "")))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise TrustError(f"{where} is malformed ({exc})", hint="re-sign the bundle on the build host") from exc


def verify_bundle_signature(root: str | os.PathLike, trusted: Iterable[PublicKey],
                            manifest_name: str = "manifest.json") -> Signature:
    """Check that the bundle's manifest is signed by one of ``trusted``.

    Args:
        root: the bundle directory (its files are checked against the manifest separately, by ``load_bundle``).
        trusted: the station's trusted public keys.
        manifest_name: the signed file.

    Returns:
        The verified signature.

    Raises:
        TrustError: unsigned; signed by a key that is not trusted (naming its key id); or the signature does not
            verify (naming the key id).
    """
    root = Path(root)
    sig = read_signature(root)
    if sig is None:
        raise TrustError(f"bundle {root} is not signed (no {SIGNATURE})",
                         hint="sign it on the build host (edgead sign BUNDLE --key KEY, or --sign-key when it is "
                              "written), or set security.allow_unsigned: true on a development station")
    by_id = {k.key_id: k for k in trusted}
    signer = sig.public_key.key_id
    if sig.key_id != signer:
        raise TrustError(f"bundle {root}: {SIGNATURE} names key {sig.key_id} but carries key {signer} "
                         "(tampered signature)", hint="do not use this bundle")
    key = by_id.get(signer)
    if key is None:
        known = ", ".join(sorted(by_id)) or "none"
        raise TrustError(f"bundle {root} is signed by key {signer}, which this station does not trust "
                         f"(security.trusted_keys: {known})",
                         hint="deploy a bundle signed by a trusted key, or add that key's .pub to "
                              "security.trusted_keys if plant IT approves it")
    manifest = (root / manifest_name).read_bytes()
    if hashlib.sha256(manifest).hexdigest() != sig.manifest_sha256 or \
            not key.verifies(sig.signature, signed_message(manifest)):
        raise TrustError(f"bundle {root}: the signature by key {signer} does not verify ({manifest_name} changed "
                         "after it was signed)", hint="do not use this bundle; re-sign the original on the build host")
    return sig
