"""Who may do what on the station's OPC UA server: users (password or X.509 user certificate), roles, and the
trust list of client application certificates. Used by :class:`edgead.opcua.server.OpcUaServer`."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Callable

from edgead.errors import EdgeadError
from edgead.opcua.audit import CALLER, Caller
from edgead.opcua.config import AnonymousAccess, OpcUaConfig, Role, certificate_user, check_password

log = logging.getLogger(__name__)


class ClientTrust:
    """Client application certificates checked against ``opcua.trusted_clients_dir`` (and its CRLs): trusted
    (itself or its issuer), not revoked, in its validity period, issued for the URI the client claims, with
    the key usages of an OPC UA client. asyncua calls it (``server.set_certificate_validator``) for each new
    secure channel, so a :meth:`reload` applies from the next connection on.

    Args:
        cfg: the ``opcua`` section (``trusted_clients_dir`` set).
    """

    def __init__(self, cfg: OpcUaConfig):
        self.cfg = cfg
        self.count = 0  # trusted certificates loaded
        self._validator = None

    async def load(self) -> None:
        """Read the folders into a new validator; the old one stays in force until this succeeds.

        Raises:
            ConfigError: the folder is unreadable, holds no certificate, or holds one that does not load.
        """
        from asyncua.crypto.truststore import TrustStore
        from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

        from edgead.errors import ConfigError

        cfg = self.cfg
        try:
            found = cfg.trusted_certificates()
            if not found:
                raise ConfigError(f"opcua.trusted_clients_dir: {cfg.trusted_clients_dir} holds no .der or .pem "
                                  "certificate (or is gone)")
            crl = [cfg.client_crl_dir] if cfg.client_crl_dir is not None else []
            store = TrustStore([cfg.trusted_clients_dir], crl)
            await store.load()
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 -- OSError, a certificate or CRL cryptography cannot read
            raise ConfigError(f"opcua.trusted_clients_dir/client_crl_dir: cannot be read: {exc}") from exc
        options = CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
        self._validator, self.count = CertificateValidator(options, store), len(found)
        log.info("OPC UA: client certificates checked against %d trusted certificate(s) in %s%s", self.count,
                 cfg.trusted_clients_dir, f" and the CRLs in {cfg.client_crl_dir}" if crl else "")

    async def reload(self) -> bool:
        """Read the folders again (SIGHUP); on a failure keep the list in force and log why. True if reloaded."""
        try:
            await self.load()
        except EdgeadError as exc:
            log.error("OPC UA: client trust list not reloaded, the %d certificate(s) loaded before stay in force: "
                      "%s", self.count, exc.message)
            return False
        return True

    async def __call__(self, certificate, app_description):
        try:
            await self._validator.validate(certificate, app_description)
        except Exception:
            log.warning("OPC UA: client %r refused: its certificate is not trusted (opcua.trusted_clients_dir)",
                        getattr(app_description, "ApplicationUri", "?"))
            raise


class UserManager:
    """asyncua's user manager: name + password against the users file, or an X.509 user token whose certificate
    is a certificate user's; anonymous only when configured.

    asyncua calls :meth:`get_user` with ``certificate`` set for an anonymous session too (the secure channel's
    certificate), so the manager records the certificate of the X.509 token that asyncua just verified (the client
    signed the server's nonce with its key) and only that one logs a certificate user in.
    """

    def __init__(self, users: dict[str, tuple[Role, str]], anonymous: AnonymousAccess,
                 on_refused: Callable[[Caller, str], None] | None = None):
        self._users, self._anonymous = users, anonymous
        self._on_refused = on_refused or (lambda caller, why: None)
        self._x509: bytes | None = None

    def watch_x509_tokens(self, iserver) -> None:
        """Wrap ``iserver.verify_x509_token`` to remember the certificate of the token it verified."""
        verify = iserver.verify_x509_token

        def verified(isession, token, signature):
            self._x509 = verify(isession, token, signature)  # raises when the signature does not verify
            return self._x509

        iserver.verify_x509_token = verified

    def get_user(self, iserver, username=None, password=None, certificate=None):
        from asyncua.crypto.permission_rules import UserRole

        user_type = _user_type()
        token, self._x509 = self._x509, None
        client = _subject(certificate)
        if username is None and token is not None and certificate == token:  # an X.509 user token, verified
            name = certificate_user(self._users, bytes(token))
            login = f"x509 {_subject(token)}"
            if name is None:
                log.warning("OPC UA: login refused for an X.509 user certificate not in opcua.users_file")
                self._on_refused(Caller("?", "", login, client), "certificate not in opcua.users_file")
                return None
            return user_type(role=UserRole.User, name=name, login=login, client=client)
        if username is None:  # anonymous (``certificate`` is the secure channel's, not a user identity)
            if self._anonymous is AnonymousAccess.VIEWER:
                return user_type(role=UserRole.Anonymous, login="anonymous", client=client)
            self._on_refused(Caller("anonymous", "", "anonymous", client), "anonymous access is off")
            return None
        entry = self._users.get(username or "")
        if entry is None or not check_password(password or "", entry[1]):
            log.warning("OPC UA: login refused for user %r", username)
            self._on_refused(Caller(str(username)[:64], "", "password", client),
                             "unknown user" if entry is None else "wrong password")
            return None
        return user_type(role=UserRole.User, name=username, login="password", client=client)


@functools.lru_cache(maxsize=1)
def _user_type():
    """asyncua's ``User`` with how the user logged in and from which client application (for the audit trail)."""
    from asyncua.crypto.permission_rules import User

    @dataclass
    class StationUser(User):
        login: str = "anonymous"
        client: str = ""

    return StationUser


def _subject(der: bytes | None) -> str:
    """A certificate's subject (RFC 4514), or '' (no certificate, or not one cryptography can read)."""
    if not der:
        return ""
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(bytes(der)).subject.rfc4514_string()[:200]
    except ValueError:
        return ""


def caller_of(user, users: dict[str, tuple[Role, str]]) -> Caller:
    """The :class:`Caller` of a session's user (None or anonymous: ``anonymous`` with the viewer role)."""
    name = getattr(user, "name", None)
    if not name:
        return Caller("anonymous", Role.VIEWER.value, "anonymous", getattr(user, "client", ""))
    role = users.get(name, (Role.VIEWER, ""))[0]
    return Caller(name, role.value, getattr(user, "login", "password"), getattr(user, "client", ""))


def roles_ruleset(users: dict[str, tuple[Role, str]], on_denied: Callable[[Caller, object, object], None]):
    """A permission ruleset: operators may call methods; viewers and anonymous sessions may only read/browse/
    subscribe; nobody writes or changes the address space. Every request's caller goes into :data:`CALLER` (the
    method callbacks read it there); a refused call or write goes to ``on_denied(caller, type id, body)``."""
    from asyncua import ua
    from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset

    everything = {ua.NodeId(t) for t in USER_TYPES}
    writes = {ua.NodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary)}
    calls = {ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary)}
    allowed = {Role.OPERATOR: everything - writes, Role.VIEWER: everything - writes - calls}

    class Roles(PermissionRuleset):
        def check_validity(self, user, action_type_id, body):
            caller = caller_of(user, users)
            CALLER.set(caller)
            ok = action_type_id in allowed[Role(caller.role)]
            if not ok and action_type_id in writes | calls:
                on_denied(caller, action_type_id, body)
            return ok

    return Roles()
