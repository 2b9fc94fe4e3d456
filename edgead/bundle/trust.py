"""Which bundles a station admits: signed by a trusted key, optionally pinned to one model hash.

:func:`check_trust` is the one decision, used by ``edgead check``, ``edgead run``, a SIGHUP reload, the deploy
self-test on the station and the release build on the host (docs/bundle-format.md, "Trust model").

Example:
    >>> policy = TrustPolicy(trusted_keys=(read_public_key("keys/build.pub"),))       # doctest: +SKIP
    >>> check_trust(load_bundle("bundle"), policy).note()                            # doctest: +SKIP
    'signed by trusted key 3f2a9c0d1e4b5a67'
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgead.bundle.signing import PublicKey, TrustError, read_signature, signed_message, verify_bundle_signature


@dataclass(frozen=True)
class TrustPolicy:
    """A station's rules for bundles.

    Attributes:
        trusted_keys: public keys whose signatures the station accepts.
        allow_unsigned: development only: run a bundle without a trusted signature (with a warning). A signature
            that does not verify even with its own key (a tampered bundle) is refused regardless.
        model_sha256: run only the bundle with this model hash (``bundle_sha256``), signed or not.
    """

    trusted_keys: tuple[PublicKey, ...] = ()
    allow_unsigned: bool = False
    model_sha256: str | None = None


class TrustStatus(str, Enum):
    """How a bundle was admitted."""

    SIGNED = "signed"  # signed by a trusted key, signature verified
    UNSIGNED_ALLOWED = "unsigned-allowed"  # no trusted signature; admitted by security.allow_unsigned


@dataclass(frozen=True)
class TrustReport:
    """The outcome of :func:`check_trust`: how the bundle was admitted, by which key, and the warning to print."""

    status: TrustStatus
    key_id: str | None = None
    warning: str | None = None

    def note(self) -> str:
        if self.status is TrustStatus.SIGNED:
            return f"signed by trusted key {self.key_id}"
        return f"NOT VERIFIED: {self.warning}"


def check_trust(bundle, policy: TrustPolicy) -> TrustReport:
    """Admit ``bundle`` under ``policy`` or refuse it.

    Args:
        bundle: a loaded :class:`~edgead.bundle.Bundle` (its files already match its manifest).
        policy: the station's :class:`TrustPolicy`.

    Returns:
        The :class:`TrustReport` (with a warning when admitted only by ``allow_unsigned``).

    Raises:
        TrustError: the model hash is not the pinned one; or, without ``allow_unsigned``, the bundle is unsigned,
            signed by a key that is not trusted, or its signature does not verify (the message names the key id);
            or, even with ``allow_unsigned``, its signature does not verify with its own key (tampered).
    """
    if policy.model_sha256 and bundle.model_hash != policy.model_sha256.lower():
        raise TrustError(f"bundle {bundle.root} has model hash {bundle.model_hash}, but security.model_sha256 pins "
                         f"{policy.model_sha256.lower()}", hint="deploy the pinned model, or change the pin")
    try:
        sig = verify_bundle_signature(bundle.root, policy.trusted_keys)
    except TrustError as exc:
        if not policy.allow_unsigned:
            raise
        sig = read_signature(bundle.root)
        if sig is not None and not sig.public_key.verifies(sig.signature,
                                                           signed_message((bundle.root / "manifest.json").read_bytes())):
            raise TrustError(f"bundle {bundle.root}: its signature by key {sig.key_id} does not verify (the bundle "
                             "was changed after signing); security.allow_unsigned does not admit a tampered bundle",
                             hint="use the original bundle") from exc
        return TrustReport(TrustStatus.UNSIGNED_ALLOWED, sig.key_id if sig else None,
                           f"security.allow_unsigned is true: running bundle {bundle.model_hash[:12]} without a "
                           f"trusted signature ({exc.message}); for development only")
    return TrustReport(TrustStatus.SIGNED, sig.key_id)
