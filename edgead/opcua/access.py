"""Who may do what on the station's OPC UA server: users (password or X.509 user certificate), roles, and the
trust list of client application certificates. Used by :class:`edgead.opcua.server.OpcUaServer`."""
from __future__ import annotations

import logging

from edgead.opcua.config import AnonymousAccess, OpcUaConfig, Role, certificate_user, check_password

log = logging.getLogger(__name__)


async def client_validator(cfg: OpcUaConfig):
    """Client application certificates checked against ``opcua.trusted_clients_dir`` (and its CRLs): trusted
    (itself or its issuer), not revoked, in its validity period, issued for the URI the client claims, with
    the key usages of an OPC UA client."""
    from asyncua.crypto.truststore import TrustStore
    from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

    crl = [cfg.client_crl_dir] if cfg.client_crl_dir is not None else []
    store = TrustStore([cfg.trusted_clients_dir], crl)
    await store.load()
    options = CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
    validator = CertificateValidator(options, store)
    log.info("OPC UA: client certificates checked against %d trusted certificate(s) in %s",
             len(cfg.trusted_certificates()), cfg.trusted_clients_dir)

    async def validate(certificate, app_description):
        try:
            await validator.validate(certificate, app_description)
        except Exception:
            log.warning("OPC UA: client %r refused: its certificate is not trusted (opcua.trusted_clients_dir)",
                        getattr(app_description, "ApplicationUri", "?"))
            raise
    return validate


class UserManager:
    """asyncua's user manager: name + password against the users file, or an X.509 user token whose certificate
    is a certificate user's; anonymous only when configured.

    asyncua calls :meth:`get_user` with ``certificate`` set for an anonymous session too (the secure channel's
    certificate), so the manager records the certificate of the X.509 token that asyncua just verified (the client
    signed the server's nonce with its key) and only that one logs a certificate user in.
    """

    def __init__(self, users: dict[str, tuple[Role, str]], anonymous: AnonymousAccess):
        self._users, self._anonymous = users, anonymous
        self._x509: bytes | None = None

    def watch_x509_tokens(self, iserver) -> None:
        """Wrap ``iserver.verify_x509_token`` to remember the certificate of the token it verified."""
        verify = iserver.verify_x509_token

        def verified(isession, token, signature):
            self._x509 = verify(isession, token, signature)  # raises when the signature does not verify
            return self._x509

        iserver.verify_x509_token = verified

    def get_user(self, iserver, username=None, password=None, certificate=None):
        from asyncua.crypto.permission_rules import User, UserRole

        token, self._x509 = self._x509, None
        if username is None and token is not None and certificate == token:  # an X.509 user token, verified
            name = certificate_user(self._users, bytes(token))
            if name is None:
                log.warning("OPC UA: login refused for an X.509 user certificate not in opcua.users_file")
                return None
            return User(role=UserRole.User, name=name)
        if username is None:  # anonymous (``certificate`` is the secure channel's, not a user identity)
            return User(role=UserRole.Anonymous) if self._anonymous is AnonymousAccess.VIEWER else None
        entry = self._users.get(username or "")
        if entry is None or not check_password(password or "", entry[1]):
            log.warning("OPC UA: login refused for user %r", username)
            return None
        return User(role=UserRole.User, name=username)


def roles_ruleset(users: dict[str, tuple[Role, str]]):
    """A permission ruleset: operators may call methods; viewers and anonymous sessions may only read/browse/
    subscribe; nobody writes or changes the address space."""
    from asyncua import ua
    from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, UserRole

    everything = {ua.NodeId(t) for t in USER_TYPES}
    writes = {ua.NodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary)}
    calls = {ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary)}
    allowed = {Role.OPERATOR: everything - writes, Role.VIEWER: everything - writes - calls}

    class Roles(PermissionRuleset):
        def check_validity(self, user, action_type_id, body):
            if user is None or user.role is UserRole.Anonymous:
                return action_type_id in allowed[Role.VIEWER]
            role = users.get(user.name, (Role.VIEWER, ""))[0]
            return action_type_id in allowed[role]

    return Roles()
