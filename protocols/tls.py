"""TLS listeners' certificates, shared by the core (``ak server`` :9443), the standalone outposts (the proxy's
AUTHENTIK_LISTEN__HTTPS, the LDAP outpost's LDAPS/StartTLS): a self-signed certificate made on first start and
kept in a directory (the core's data directory, the outpost's state directory), or made in memory.

authentik's server and outposts do the same (reference §2.1: "otherwise a self-signed default is used"). The
key and the certificate live in ONE PEM file written atomically, so two replicas starting at the same
time on a shared directory can never pair one's key with the other's certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOGGER = logging.getLogger("gatehouse.tls")
FILE_NAME = "self-signed.pem"
COMMON_NAME = "gatehouse self-signed certificate"
VALID_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=14)


def self_signed_pem(hostnames: tuple[str, ...] = ("localhost",), common_name: str = COMMON_NAME) -> bytes:
    """A P-256 key (fast to make, unlike RSA) and a certificate for localhost and this host's names."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gatehouse")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _usable(path: Path) -> bool:
    """The file holds a certificate and key that are not about to expire."""
    try:
        data = path.read_bytes()
        cert = x509.load_pem_x509_certificate(data)
        serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - RENEW_BEFORE > datetime.datetime.now(datetime.UTC)


def ensure_certificate(cert_dir: Path) -> Path:
    """Return the PEM file (certificate then key), creating or renewing it when needed."""
    path = cert_dir / FILE_NAME
    if _usable(path):
        return path
    cert_dir.mkdir(parents=True, exist_ok=True)
    hostnames = tuple(dict.fromkeys(("localhost", socket.gethostname(), "127.0.0.1", "::1")))
    data = self_signed_pem(hostnames)
    fd, tmp = tempfile.mkstemp(dir=cert_dir, prefix=".self-signed-")  # mode 0600: it holds the key
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    LOGGER.info("created a self-signed certificate", extra={"path": str(path)})
    return path


def server_context(pem: Path | str, variable: str = "") -> ssl.SSLContext:
    """A TLS 1.2+ server context from one PEM file (certificate then key). ``variable``: the setting that named
    the file, for the error (ValueError) when it cannot be loaded."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(pem))
    except (OSError, ssl.SSLError) as exc:
        named = f"{variable}={str(pem)!r}" if variable else repr(str(pem))
        raise ValueError(f"{named}: cannot load a certificate and key from it ({exc}); expected one PEM file with "
                         "the certificate and its private key") from None
    return context


def in_memory_context(hostnames: tuple[str, ...] = ("localhost",), common_name: str = COMMON_NAME) -> ssl.SSLContext:
    """A server context with a new self-signed certificate that is never kept (``load_cert_chain`` reads files
    only: a temporary file, mode 0600, deleted at once)."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as fh:
        fh.write(self_signed_pem(hostnames, common_name))
        fh.flush()
        return server_context(fh.name)


def context_from_pem(certificate: str, private_key: str, name: str = "") -> ssl.SSLContext:
    """A server context from PEM texts (a key pair fetched from the core): a temporary file, mode 0600, deleted at
    once (``load_cert_chain`` reads files only). ValueError, naming ``name``, when they do not load."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as fh:
        fh.write(certificate.strip().encode() + b"\n" + private_key.strip().encode() + b"\n")
        fh.flush()
        try:
            return server_context(fh.name)
        except ValueError:
            raise ValueError(f"key pair {name!r}: its certificate and private key do not load as PEM") from None


def fingerprint(pem: Path) -> str:
    """SHA-256 of the certificate (hex), for logs and tests."""
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()
