"""What every token grant shares: tokens are issued by core.oidc.tokens, not authlib's generator."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error

from core.oidc import tokens


class AccessDenied(OAuth2Error):
    """The application's bindings refuse the user (authentik answers 403 at the token endpoint)."""

    error = "access_denied"
    status_code = 403


class TokenIssuer:
    """Mixin for authlib grants. ``token_context()`` supplies session, auth_time, nonce and code."""

    def token_context(self) -> dict:
        return {}

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        provider = self.request.client.provider
        scopes = [s for s in (scope or "").split() if s]
        issued = tokens.issue(provider=provider, user=user, scopes=scopes, grant_type=grant_type or self.GRANT_TYPE,
                              issuer=self.server.issuer_for(provider), include_refresh=include_refresh_token,
                              client_ip=self.server.client_ip, **self.token_context())
        self.request.issued = issued
        return issued.response
