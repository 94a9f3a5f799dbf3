"""The LDAPS/StartTLS certificate: a PEM file (certificate and key) from AUTHENTIK_LDAP__TLS_CERT_FILE
(``OutpostConfig.ldap_tls_cert_file``), else a self-signed one made in memory at start (authentik's LDAP outpost
falls back to a self-signed default the same way, reference §3.1). Providers' own certificates are not used yet:
the core has no API that hands a key pair to an outpost. The certificate code is protocols/tls.py, shared with the
core and the proxy's HTTPS."""

from __future__ import annotations

import ssl

from protocols import tls

CERT_FILE_VARIABLE = "AUTHENTIK_LDAP__TLS_CERT_FILE"
COMMON_NAME = "gatehouse LDAP outpost (self-signed)"


def server_context(cert_file: str = "") -> ssl.SSLContext:
    if cert_file:
        return tls.server_context(cert_file, CERT_FILE_VARIABLE)
    return tls.in_memory_context(common_name=COMMON_NAME)
