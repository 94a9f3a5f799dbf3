"""Refresh token grant (RFC 6749 §6) with rotation: each refresh token works once; presenting a
used one revokes the whole family (Security BCP §4.14.2). Only tokens granted ``offline_access``
exist, and the scope can only shrink.

The requested scope (the original grant when none is sent) is first narrowed to what the provider
maps today, as at /authorize (authentik ``TokenRequest.check_scopes``): an RP resending its original
``openid offline_access groups`` is not refused for the ``groups`` the provider never mapped, and a
mapping removed since the grant is no longer granted. What remains must lie within the original
grant (§6: "MUST NOT include any scope not originally granted"), else invalid_scope."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidScopeError, grants

from core.events.record import record
from core.oidc import tokens
from core.oidc.client import narrow_scope
from core.oidc.grants.base import TokenIssuer
from core.oidc.models import RefreshToken


class RefreshTokenGrant(TokenIssuer, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        row = tokens.find_refresh_token(refresh_token)
        if row is None or row.provider_id != self.request.client.provider.pk:
            return None
        if row.revoked:
            revoked = tokens.revoke_family(refresh=row)
            record("suspicious_request", user=row.user, client_ip=self.server.client_ip,
                   message="refresh token reused; its token family revoked", provider=row.provider.name,
                   revoked=revoked)
            return None
        if not tokens.is_active(row) or tokens.OFFLINE_ACCESS not in row.scopes:
            return None
        return row

    def _validate_token_scope(self, token):
        asked = self.request.payload.scope or token.scope
        # The client's provider is the token's (authenticate_refresh_token), loaded with its scope mappings.
        scope = narrow_scope(self.request.client.provider, asked)
        if not set(scope.split()) <= set(token.scopes):
            raise InvalidScopeError(f"scope {asked!r} asks for more than the refresh token was granted "
                                    f"({token.scope!r}); ask for those scopes at /authorize")
        self.request.scope = scope

    def issue_token(self, user, refresh_token):
        return self.generate_token(user=user, scope=self.request.scope,
                                   include_refresh_token=self.INCLUDE_NEW_REFRESH_TOKEN)

    def authenticate_user(self, refresh_token):
        if RefreshToken.objects.filter(pk=refresh_token.pk, revoked=False).update(revoked=True) != 1:
            raise InvalidGrantError("the refresh token was already used")
        return refresh_token.user if refresh_token.user.is_active else None

    def revoke_old_credential(self, refresh_token):
        """Already revoked in authenticate_user, before the new tokens were made."""

    def token_context(self) -> dict:
        row = self.request.refresh_token
        return {"session": row.session, "auth_time": row.auth_time, "nonce": row.nonce or None,
                "authorization_code": row.authorization_code}
