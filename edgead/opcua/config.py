"""The ``opcua`` configuration section and the users file (roles, salted password hashes).

Example:
    >>> OpcUaConfig.from_dict({"listen": "0.0.0.0:4840"}).security
    <SecurityMode.SIGN_AND_ENCRYPT: 'sign-and-encrypt'>
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from edgead.errors import ConfigError

PBKDF2_ITERATIONS = 200_000
X509_PREFIX = "x509_sha256$"


class SecurityMode(str, Enum):
    """The OPC UA message security of the one endpoint (policy Basic256Sha256)."""

    SIGN_AND_ENCRYPT = "sign-and-encrypt"
    SIGN = "sign"
    NONE = "none"  # only for a closed test network: everything in clear, passwords included


class Role(str, Enum):
    """What a user may do."""

    VIEWER = "viewer"  # browse, read, subscribe
    OPERATOR = "operator"  # also call Trigger and SelectRecipe


class AnonymousAccess(str, Enum):
    """Whether a client without credentials gets a session."""

    OFF = "off"
    VIEWER = "viewer"


@dataclass(frozen=True)
class OpcUaConfig:
    """``opcua``: the OPC UA server (after OPC 40100 Machine Vision), off unless ``listen`` is set. Checked by
    ``edgead check``; ``edgead run`` does not start it yet (the server is ``edgead.opcua.server.OpcUaServer``; see
    docs/plant-integration.md).

    Attributes:
        listen: ``HOST:PORT`` of the endpoint ``opc.tcp://HOST:PORT/edgead``; ``null`` turns the server off.
            Loopback unless set otherwise (``0.0.0.0:4840`` for the plant network).
        security: message security of the endpoint (Basic256Sha256): ``sign-and-encrypt``, ``sign`` or ``none``.
        anonymous: ``off`` (default) or ``viewer`` (read-only sessions without credentials).
        users_file: YAML of users, ``NAME: {role: operator|viewer, password: HASH}`` with hashes from
            ``edgead.opcua.config.hash_password``, or ``NAME: {role: ..., certificate: PATH}`` for a user who
            logs in with an X.509 user certificate (``.der``/``.pem``, relative to the users file; the client
            proves it holds the key); ``null``: no user can log in (only anonymous, if allowed).
        certificate_file: the server's certificate (DER or PEM); ``null``: a self-signed one is made in ``pki_dir``
            on first start and kept.
        private_key_file: the certificate's private key (PEM); set with ``certificate_file``.
        pki_dir: where the self-signed certificate and key are kept (``server-cert.der``, ``server-key.pem``).
        trusted_clients_dir: a folder of trusted client application certificates (``.der``/``.pem``; a client's
            own self-signed certificate, or the CA that issued it): a client whose certificate is not trusted,
            expired, revoked or issued for another application URI is refused (``BadCertificateUntrusted`` and
            the like) before it can log in. ``null``: any client certificate is accepted (users still need their
            password). Read at start, and again at each reload (SIGHUP): a newly trusted client can connect, a
            removed or revoked one is refused from its next connection on (open sessions stay). A reload that
            finds the folder empty or unreadable keeps the list in force and logs why.
        client_crl_dir: a folder of certificate revocation lists (``.der``/``.pem``) for ``trusted_clients_dir``,
            read with it.
        max_string_chars: longest part id or recipe name a client may pass; longer ones are refused
            (``BadOutOfRange``).
        max_message_kb: longest OPC UA message the server accepts; a bigger request is refused and its
            connection closed.
        request_queue: trigger and recipe requests waiting for the station; a full queue refuses the call
            (``BadTooManyOperations``).
    """

    listen: str | None = None
    security: SecurityMode = SecurityMode.SIGN_AND_ENCRYPT
    anonymous: AnonymousAccess = AnonymousAccess.OFF
    users_file: Path | None = None
    certificate_file: Path | None = None
    private_key_file: Path | None = None
    pki_dir: Path = Path("opcua-pki")
    trusted_clients_dir: Path | None = None
    client_crl_dir: Path | None = None
    max_string_chars: int = 64
    max_message_kb: int = 1024
    request_queue: int = 16

    def __post_init__(self) -> None:
        if self.listen is not None:
            self.address()
        if (self.certificate_file is None) != (self.private_key_file is None):
            raise ConfigError("opcua.certificate_file and opcua.private_key_file go together",
                              hint="set both, or neither for a self-signed certificate")
        if self.client_crl_dir is not None and self.trusted_clients_dir is None:
            raise ConfigError("opcua.client_crl_dir needs opcua.trusted_clients_dir",
                              hint="revocation lists apply to a trust list")
        for name in ("max_string_chars", "max_message_kb", "request_queue"):
            if getattr(self, name) < 1:
                raise ConfigError(f"opcua.{name}: must be >= 1, got {getattr(self, name)}")

    @property
    def enabled(self) -> bool:
        """True when the server is configured."""
        return self.listen is not None

    def address(self) -> tuple[str, int]:
        """``(host, port)`` from :attr:`listen` (port 0 picks a free port).

        Raises:
            ConfigError: naming ``opcua.listen``.
        """
        host, sep, port = str(self.listen).rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"opcua.listen: {self.listen!r} is not HOST:PORT", hint="e.g. 127.0.0.1:4840")
        return host.strip("[]") or "127.0.0.1", int(port)

    def users(self) -> dict[str, tuple[Role, str]]:
        """The users file: name -> (role, password hash).

        Raises:
            ConfigError: naming ``opcua.users_file`` and the entry.
        """
        if self.users_file is None:
            return {}
        from edgead.config import load_yaml

        try:
            data = load_yaml(self.users_file)
        except ConfigError as exc:
            raise ConfigError(f"opcua.users_file: {exc.message}", hint=exc.hint) from None
        out = {}
        for name, entry in data.items():
            if not isinstance(entry, Mapping) or set(entry) not in ({"role", "password"}, {"role", "certificate"}):
                raise ConfigError(f"opcua.users_file {self.users_file}: user {name!r} needs exactly role and "
                                  "password, or role and certificate",
                                  hint="password: a hash from edgead.opcua.config.hash_password; certificate: the "
                                       "user's X.509 certificate file")
            try:
                role = Role(entry["role"])
            except ValueError:
                raise ConfigError(f"opcua.users_file {self.users_file}: user {name!r}: role {entry['role']!r} is "
                                  "not viewer or operator") from None
            if "certificate" in entry:
                out[str(name)] = (role, self._certificate_secret(name, entry["certificate"]))
                continue
            if not str(entry["password"]).startswith("pbkdf2_sha256$"):
                raise ConfigError(f"opcua.users_file {self.users_file}: user {name!r}: password is not a hash",
                                  hint="store python -c 'from edgead.opcua.config import hash_password; "
                                       "print(hash_password(\"...\"))', never the password itself")
            out[str(name)] = (role, str(entry["password"]))
        return out

    def _certificate_secret(self, name, path) -> str:
        """``x509_sha256$HEX``: the SHA-256 of a certificate user's DER certificate."""
        file = Path(path) if Path(path).is_absolute() else Path(self.users_file).parent / path
        where = f"opcua.users_file {self.users_file}: user {name!r}: certificate {file}"
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror or exc}", hint="the user's certificate, .der or .pem") from None
        return X509_PREFIX + hashlib.sha256(certificate_der(data, where)).hexdigest()

    def check_files(self) -> None:
        """What ``edgead check`` adds: the users file parses; a configured certificate and key exist.

        Raises:
            ConfigError: naming the key.
        """
        self.users()
        for name in ("certificate_file", "private_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"opcua.{name}: {path} does not exist")
        for name in ("trusted_clients_dir", "client_crl_dir"):
            folder = getattr(self, name)
            if folder is not None and not folder.is_dir():
                raise ConfigError(f"opcua.{name}: {folder} is not a folder")
        if self.trusted_clients_dir is not None and not self.trusted_certificates():
            raise ConfigError(f"opcua.trusted_clients_dir: {self.trusted_clients_dir} holds no .der or .pem "
                              "certificate: every client would be refused",
                              hint="copy the client applications' certificates (or their CA's) there")

    def trusted_certificates(self) -> list[Path]:
        """The certificate files in ``trusted_clients_dir`` (what the server loads; empty when unset)."""
        folder = self.trusted_clients_dir
        if folder is None or not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".der", ".pem") and p.is_file())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OpcUaConfig":
        """Build the section from plain data, rejecting unknown keys.

        Raises:
            ConfigError: on an unknown key or a bad value.
        """
        from edgead.config import from_dict

        return from_dict(cls, data, "opcua")


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A salted PBKDF2-SHA256 hash for the users file: ``pbkdf2_sha256$ITERATIONS$SALT$HASH`` (hex).

    Example:
        >>> check_password("s3cret", hash_password("s3cret", iterations=1000))
        True
    """
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    try:
        _, iterations, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def certificate_der(data: bytes, where: str = "certificate") -> bytes:
    """A certificate file's content (DER, or one PEM block) as DER.

    Raises:
        ConfigError: naming ``where`` when it is neither.
    """
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if data[:1] == b"\x30":  # an ASN.1 SEQUENCE: DER
            return data
        raise ConfigError(f"{where}: neither a DER nor a PEM certificate")
    import base64

    body = data.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END CERTIFICATE-----", 1)[0]
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        raise ConfigError(f"{where}: a PEM block that is not base64") from None


def certificate_user(users: Mapping[str, tuple], der: bytes) -> str | None:
    """The name of the certificate user whose certificate is ``der``, or None."""
    secret = X509_PREFIX + hashlib.sha256(der).hexdigest()
    return next((name for name, (_, stored) in users.items() if hmac.compare_digest(stored, secret)), None)
