"""A self-signed OPC UA application certificate (RSA 2048, SHA-256), made with ``cryptography`` when none is given.

OPC UA clients check that the certificate's subjectAltName URI equals the server's application URI, and
Basic256Sha256 needs an RSA key. The certificate is kept (``server-cert.der``, ``server-key.pem`` with mode 0600)
so that clients that trusted it once keep trusting it across restarts.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from pathlib import Path

from edgead.errors import ConfigError, lazy_import

VALID_DAYS = 3650


def ensure_certificate(folder: Path, application_uri: str, hosts: list[str],
                       name: str = "server") -> tuple[Path, Path]:
    """The certificate and key in ``folder``, made once (self-signed) when they are not there.

    Args:
        folder: where ``NAME-cert.der`` and ``NAME-key.pem`` are kept (created 0700).
        application_uri: goes into subjectAltName as a URI.
        hosts: host names and IP addresses for subjectAltName.
        name: file name prefix.

    Returns:
        ``(cert_path, key_path)``.

    Raises:
        MissingExtraError: without ``cryptography`` (a core dependency: reinstall edgead).
        ConfigError: if the folder cannot be written.
    """
    cert_path, key_path = folder / f"{name}-cert.der", folder / f"{name}-key.pem"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    x509 = lazy_import("cryptography.x509", feature="the OPC UA certificate")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"edgead {socket.gethostname()}"[:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgead")])
    alt: list = [x509.UniformResourceIdentifier(application_uri)]
    for host in dict.fromkeys(hosts):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                         data_encipherment=True, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    except OSError as exc:
        raise ConfigError(f"opcua.pki_dir: cannot write the certificate to {folder}: {exc}",
                          hint="make the folder writable for the daemon's user, or set opcua.certificate_file") from exc
    return cert_path, key_path
