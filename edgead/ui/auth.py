"""Who may label parts on the operator page: a password file of scrypt hashes, and HTTP Basic credentials.

One line per user, ``name:role:scrypt$n$r$p$salt$hash`` (salt and hash in base64), written by ``edgead ui-passwd``.
The file holds no password, only its hash (:func:`hashlib.scrypt`, the standard library's memory-hard key
derivation, so the station needs no extra package for it); it should be readable by the service user alone. A
``viewer`` may sign in but not write; an ``operator`` may label. The page sends the credentials with each write
(HTTP Basic over loopback, or over the TLS of a reverse proxy when the page is served on the line network).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edgead.errors import ConfigError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1  # 16 MiB per check: cheap for one label, dear for a guesser
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class Role(str, Enum):
    """What a signed-in user may do."""

    VIEWER = "viewer"  # sign in, change nothing
    OPERATOR = "operator"  # label parts


def hash_password(password: str, *, salt: bytes | None = None, n: int = SCRYPT_N) -> str:
    """``scrypt$n$r$p$salt$hash`` for ``password`` (a random 16-byte salt unless given)."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 << 20, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded`` (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = encoded.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 << 20, dklen=len(want))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str


def load_users(path: Path) -> dict[str, User]:
    """The users of a password file.

    Raises:
        ConfigError: the file is missing or a line is malformed (naming the line).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"ui.operators_file {str(path)!r}: {exc.strerror or exc}",
                          hint="create it with: edgead ui-passwd FILE NAME") from exc
    users = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or not _NAME.match(parts[0]) or parts[1] not in {r.value for r in Role} \
                or not parts[2].startswith("scrypt$"):
            raise ConfigError(f"ui.operators_file {str(path)!r} line {number}: not 'name:role:scrypt$...'",
                              hint="rewrite the user with: edgead ui-passwd FILE NAME")
        users[parts[0]] = User(parts[0], Role(parts[1]), parts[2])
    return users


def set_user(path: Path, name: str, password: str, role: Role = Role.OPERATOR) -> None:
    """Add or replace a user in the password file (created with mode 0600; rewritten atomically).

    Raises:
        ConfigError: a name that is not 1-64 of ``A-Za-z0-9._@-``, or an empty password.
    """
    if not _NAME.match(name):
        raise ConfigError(f"user name {name!r}: use 1-64 letters, digits or . _ @ -")
    if not password:
        raise ConfigError(f"user {name}: the password is empty", hint="give a password")
    path = Path(path)
    users = load_users(path) if path.exists() else {}
    users[name] = User(name, Role(role), hash_password(password))
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# edgead operator page users: name:role:scrypt hash (edgead ui-passwd)\n")
        fh.writelines(f"{u.name}:{u.role.value}:{u.password_hash}\n" for u in users.values())
    os.replace(tmp, path)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(name, password)`` from an ``Authorization: Basic ...`` header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        name, sep, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (name, password) if sep else None


class Authenticator:
    """Checks credentials against the password file (re-read when it changes, so no restart to add a user)."""

    def __init__(self, path: Path | None):
        self.path = None if path is None else Path(path)
        self._users: dict[str, User] = {}
        self._stamp = None

    def _refresh(self) -> dict[str, User]:
        if self.path is None:
            return {}
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp != self._stamp:
            self._users, self._stamp = load_users(self.path), stamp
        return self._users

    def check(self, header: str | None, need: Role = Role.OPERATOR) -> User | None:
        """The user, when the header's credentials are right and the role suffices; else None."""
        creds = basic_credentials(header)
        if creds is None:
            return None
        try:
            user = self._refresh().get(creds[0])
        except (OSError, ConfigError):
            return None
        if user is None or not verify_password(creds[1], user.password_hash):
            return None
        if need is Role.OPERATOR and user.role is not Role.OPERATOR:
            return None
        return user
