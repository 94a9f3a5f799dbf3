"""OpenID Connect discovery document for one provider (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).

Built for the base URL the caller used, as authentik does, so an outpost that reaches the core at
http://core:9000 gets endpoints on that host (reference §2.2, §2.6); a request for the configured base
URL's host gets exactly the base URL, scheme included (core/system/base_url.py ``request_base``). Only
known host names reach this (core/web/hosts.py), so no Host header of a stranger's choosing becomes an
issuer.
"""

from __future__ import annotations

SCOPES = ["openid", "email", "profile", "offline_access", "groups", "entitlements", "ak_proxy"]
CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "sid", "email",
          "email_verified", "name", "given_name", "preferred_username", "nickname", "groups", "entitlements"]


def issuer(provider, base_url: str) -> str:
    base = base_url.rstrip("/")
    if getattr(provider, "issuer_mode", "per_provider") == "global":
        return f"{base}/"
    return f"{base}/application/o/{provider.application.slug}/"


def _scopes(provider) -> list[str]:
    from core.oidc.claims import offered_scopes

    return sorted(offered_scopes(provider)) if getattr(provider, "pk", None) else SCOPES


def build_discovery(provider, base_url: str) -> dict:
    """``provider`` is an OAuth2Provider (or ProxyProvider) with an application."""
    base = base_url.rstrip("/")
    slug = provider.application.slug
    from core.oidc.keys import algorithm

    alg = algorithm(provider)  # HS256 without a signing key, else RS256 / ES256 by the key's type
    return {
        "issuer": issuer(provider, base),
        "authorization_endpoint": f"{base}/application/o/authorize/",
        "token_endpoint": f"{base}/application/o/token/",
        "userinfo_endpoint": f"{base}/application/o/userinfo/",
        "end_session_endpoint": f"{base}/application/o/{slug}/end-session/",
        "introspection_endpoint": f"{base}/application/o/introspect/",
        "revocation_endpoint": f"{base}/application/o/revoke/",
        "device_authorization_endpoint": f"{base}/application/o/device/",
        "jwks_uri": f"{base}/application/o/{slug}/jwks/",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password",
                                  "urn:ietf:params:oauth:grant-type:device_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [alg],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "prompt_values_supported": ["none", "login", "consent"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": _scopes(provider),
        "claims_supported": CLAIMS,
        "request_parameter_supported": False,
        "claims_parameter_supported": False,
        "backchannel_logout_supported": False,
        "frontchannel_logout_supported": False,
    }
