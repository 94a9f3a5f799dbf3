"""The LDAPS/StartTLS certificates. The default: a PEM file (certificate and key) from AUTHENTIK_LDAP__TLS_CERT_FILE
(``OutpostConfig.ldap_tls_cert_file``), else a self-signed one made in memory at start (authentik's LDAP outpost
falls back to a self-signed default the same way). A provider's own ``certificate`` (a key pair on the core) is
fetched as authentik's CryptoStore does and chosen per handshake as authentik's LDAP outpost chooses (reference
§3.1): the only provider's; else the one whose ``tls_server_name`` is the client's SNI; else the one every provider
shares; else the default. The certificate code is protocols/tls.py, shared with the core and the proxy's HTTPS."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import aiohttp

from outpost.core_link import LinkError
from protocols import tls

CERT_FILE_VARIABLE = "AUTHENTIK_LDAP__TLS_CERT_FILE"
COMMON_NAME = "gatehouse LDAP outpost (self-signed)"
KEYPAIR_PATH = "/api/v3/crypto/certificatekeypairs/{uuid}/"
LOGGER = logging.getLogger("gatehouse.outpost.ldap")


def server_context(cert_file: str = "") -> ssl.SSLContext:
    if cert_file:
        return tls.server_context(cert_file, CERT_FILE_VARIABLE)
    return tls.in_memory_context(common_name=COMMON_NAME)


class ProviderCertificates:
    """The providers' key pairs: on each refresh the pair's ``fingerprint_sha256`` is read, its PEMs only when that
    changed (``view_certificate`` / ``view_private_key``, which the core answers to the providers' outpost only).
    A pair that cannot be fetched or loaded keeps its last copy, or the default, and says so in the log."""

    def __init__(self, link: Any, default: ssl.SSLContext):
        self.link, self.default = link, default
        self._pairs: dict[str, tuple[str, ssl.SSLContext]] = {}  # key pair uuid -> (fingerprint, context)
        self._providers: list[tuple[str, str]] = []  # (tls_server_name, key pair uuid or "") per provider
        default.sni_callback = self._sni

    async def refresh(self, snapshot) -> None:
        providers = list(snapshot.providers) if snapshot else []
        wanted = {str(p["certificate"]) for p in providers if p.get("certificate")}
        for uuid in sorted(wanted):
            try:
                await self._fetch(uuid)
            except (LinkError, aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
                LOGGER.warning("ldap: a provider's certificate was not loaded; using the previous one or the default",
                               extra={"certificate": uuid, "reason": str(exc) or type(exc).__name__})
        for uuid in set(self._pairs) - wanted:
            del self._pairs[uuid]
        self._providers = [(str(p.get("tls_server_name") or "").casefold(), str(p.get("certificate") or ""))
                           for p in providers]

    async def _fetch(self, uuid: str) -> None:
        path = KEYPAIR_PATH.format(uuid=uuid)
        meta = await self.link._get_json(path)
        fingerprint = str(meta["fingerprint_sha256"])
        if uuid in self._pairs and self._pairs[uuid][0] == fingerprint:
            return
        certificate = (await self.link._get_json(path + "view_certificate/"))["data"]
        private_key = (await self.link._get_json(path + "view_private_key/"))["data"]
        self._pairs[uuid] = (fingerprint, tls.context_from_pem(certificate, private_key, str(meta.get("name", uuid))))
        LOGGER.info("ldap: provider certificate loaded", extra={"certificate": str(meta.get("name", uuid)),
                                                                "fingerprint_sha256": fingerprint})

    def select(self, server_name: str | None) -> ssl.SSLContext:
        def pair(uuid: str) -> ssl.SSLContext | None:
            found = self._pairs.get(uuid)
            return found[1] if found else None

        providers = self._providers
        if len(providers) == 1:
            return pair(providers[0][1]) or self.default
        if server_name:
            for name, uuid in providers:
                if name and name == server_name.casefold() and pair(uuid):
                    return pair(uuid)
        shared = {uuid for _name, uuid in providers}
        if len(shared) == 1:
            return pair(shared.pop()) or self.default
        return self.default

    def _sni(self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        chosen = self.select(server_name)
        if chosen is not context:
            ssl_object.context = chosen
