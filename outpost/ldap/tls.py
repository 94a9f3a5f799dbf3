"""The LDAPS/StartTLS certificate: a PEM file (certificate and key) from AUTHENTIK_LDAP__TLS_CERT_FILE, else a
self-signed one made in memory at start (authentik's LDAP outpost falls back to a self-signed default the
same way, reference §3.1). Providers' own certificates are not used yet: the core has no API that hands a
key pair to an outpost."""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE_VARIABLE = "AUTHENTIK_LDAP__TLS_CERT_FILE"


def self_signed_pem(hostnames: tuple[str, ...] = ("localhost",)) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatehouse LDAP outpost (self-signed)")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def server_context(cert_file: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert_file = cert_file or os.environ.get(CERT_FILE_VARIABLE, "").strip() or None
    if cert_file:
        try:
            context.load_cert_chain(cert_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"{CERT_FILE_VARIABLE}={cert_file!r}: cannot load a certificate and key from it "
                             f"({exc}); expected one PEM file with the certificate and its private key") from None
        return context
    with tempfile.NamedTemporaryFile(suffix=".pem") as fh:  # load_cert_chain reads files only; mode 0600
        fh.write(self_signed_pem())
        fh.flush()
        context.load_cert_chain(fh.name)
    return context
