"""An OAuth2Provider as authlib sees a client (authlib ``ClientMixin``, RFC 6749 §2).

Redirect URIs are compared as exact strings (RFC 6749 §3.1.2.3, OAuth 2.0 Security BCP §4.1.3):
no prefix, case, trailing-slash or userinfo leniency. An entry with ``matching_mode: regex`` is
used as a regular expression only because the administrator chose so, and always matched in full
(``re.fullmatch``), so ``https://app\\.example\\.com/cb`` cannot be satisfied by
``https://app.example.com/cb.evil.com`` (THREATS 11; authentik CVE-2023-48228, CVE-2024-52289).
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets

from authlib.oauth2.rfc6749 import ClientMixin
from django.db import connections, transaction

from core.oidc.models import ClientTypes, OAuth2Provider
from core.system import stamp

# client_id -> its provider (application, signing key and scope mappings attached), per process, valid while the
# configuration stamp is unchanged: a changed secret, a deleted provider or application, a new mapping or key
# replaces the stamp in the same transaction, so the next request anywhere loads afresh (core/system/stamp.py).
PROVIDERS = stamp.ProcessCache()

LOGGER = logging.getLogger("gatehouse.oidc")

GRANT_TYPES = {"authorization_code", "refresh_token", "client_credentials", "password",
               "urn:ietf:params:oauth:grant-type:device_code"}


def uri_allowed(entries, uri: str) -> bool:
    """Is ``uri`` one of ``entries`` ([{matching_mode, url}])? Exact unless an entry opts into regex."""
    if not isinstance(uri, str) or not uri or any(ord(c) < 0x20 or c == "\x7f" for c in uri):
        return False
    for entry in entries or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        if entry.get("matching_mode", "strict") == "regex":
            try:
                if re.fullmatch(entry["url"], uri):
                    return True
            except re.error:
                continue  # a broken pattern matches nothing
        elif secrets.compare_digest(entry["url"].encode(), uri.encode()):
            return True
    return False


def narrow_scope(provider: OAuth2Provider, requested: str | None) -> str:
    """The requested scopes this provider maps, in the order asked, each once.

    RFC 6749 §3.3 lets the server grant fewer scopes than asked (the token response's ``scope`` says
    which); authentik grants the overlap with the provider's scope mappings instead of refusing
    ("Application requested scopes not configured, setting to overlap"), so an RP asking for
    ``offline_access`` or ``groups`` against a provider without those mappings still signs in. A
    dropped scope grants nothing: claims come only from mapped scopes, a refresh token only from a
    mapped ``offline_access`` (THREATS 11). One log line names what was dropped.
    """
    from core.oidc.claims import offered_scopes

    wanted = list(dict.fromkeys(s for s in (requested or "").split() if s))
    if not wanted:
        return ""
    offered = offered_scopes(provider)
    granted = [s for s in wanted if s in offered]
    dropped = [s for s in wanted if s not in offered]
    if dropped:
        LOGGER.info("provider %s: requested scopes %s are not mapped by the provider and were dropped; "
                    "granted: %s (add a scope mapping to the provider to grant them)", provider.name,
                    " ".join(dropped), " ".join(granted) or "none")
    return " ".join(granted)


def provider_for(client_id: str) -> OAuth2Provider | None:
    """The provider whose client_id this is, with its application (None without one), signing key, scope mappings and
    the application's policy bindings (``application_bindings``) loaded: one query for the configuration stamp while
    nothing changed, else four or more. A fresh copy each call: the caller may change it."""
    from core.oidc.claims import mappings, remember_mappings

    using = stamp.alias()
    current = stamp.current(using)
    provider = PROVIDERS.get(client_id, current)
    if provider is not None:
        return provider
    # With read replicas, every read from the stamp's database: inside a transaction the router sends reads to the
    # primary (core/dbrouter.py). Without them, no transaction: SQLite's would take the write lock for a mere read.
    replicated = len(connections.databases) > 1
    with transaction.atomic(using=using) if replicated else contextlib.nullcontext():
        provider = OAuth2Provider.objects.using(using).select_related("signing_key", "application").filter(
            client_id=client_id).first()
        if provider is None:
            return None
        try:
            provider.application  # noqa: B018 - a provider without an application is no client
        except OAuth2Provider.application.RelatedObjectDoesNotExist:
            return None
        remember_mappings(provider)
        mappings(provider)  # loaded now, kept with the cached copy
        from core.policies.engine import load_bindings

        provider.application_bindings = load_bindings(provider.application)  # PolicyBinding, Policy are watched too
    PROVIDERS.put(client_id, current, provider)
    return provider


class Client(ClientMixin):
    def __init__(self, provider: OAuth2Provider):
        self.provider = provider

    @property
    def client_id(self) -> str:
        return self.provider.client_id

    @property
    def is_public(self) -> bool:
        return self.provider.client_type == ClientTypes.PUBLIC

    def get_client_id(self):
        return self.provider.client_id

    def get_default_redirect_uri(self):
        # RFC 6749 §3.1.2.3: only when exactly one strict URI is registered.
        strict = [e["url"] for e in self.provider.redirect_uris or []
                  if isinstance(e, dict) and e.get("matching_mode", "strict") == "strict" and e.get("url")]
        regex = [e for e in self.provider.redirect_uris or [] if isinstance(e, dict)
                 and e.get("matching_mode") == "regex"]
        return strict[0] if len(strict) == 1 and not regex else None

    def get_allowed_scope(self, scope):
        return narrow_scope(self.provider, scope)

    def check_redirect_uri(self, redirect_uri):
        return uri_allowed(self.provider.redirect_uris, redirect_uri)

    def check_client_secret(self, client_secret):
        if self.is_public or not self.provider.client_secret or not isinstance(client_secret, str):
            return False
        return secrets.compare_digest(self.provider.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method, endpoint):
        if method == "none":
            # Public clients only, and never at introspection (RFC 7662 §2.1 wants client auth).
            return self.is_public and endpoint != "introspection"
        return not self.is_public

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        if grant_type == "client_credentials":
            return not self.is_public
        return grant_type in GRANT_TYPES
