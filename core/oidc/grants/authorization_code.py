"""Authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636) and OIDC (Core §3.1).

A code is single-use: the first redemption marks it used atomically; a second one fails AND revokes
every token issued from it (RFC 6749 §4.1.2). It is bound to its provider, redirect_uri, user,
login session, nonce and challenge.
"""

from __future__ import annotations

import secrets

from authlib.oauth2.rfc6749 import InvalidGrantError, grants
from django.utils import timezone

from core.accounts.models import hash_key
from core.durations import parse
from core.events.record import record
from core.oidc import tokens
from core.oidc.grants.base import TokenIssuer
from core.oidc.models import AuthorizationCode


class AuthorizationCodeGrant(TokenIssuer, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def validate_authorization_request(self):
        """Scopes the provider does not map were dropped (Client.get_allowed_scope); a request that
        names none gets every scope the provider maps, as authentik answers ("No scopes requested,
        defaulting to all configured scopes"; RFC 6749 §3.3 lets the server pick a default).

        authlib validates again in create_authorization_response; it is the same request, so the
        first answer stands (and the dropped scopes are logged once)."""
        if getattr(self, "_validated_redirect_uri", None) is not None:
            return self._validated_redirect_uri
        redirect_uri = super().validate_authorization_request()
        if not (self.request.payload.scope or "").strip():
            from core.oidc.claims import offered_scopes

            self.request.scope = " ".join(sorted(offered_scopes(self.request.client.provider)))
        self._validated_redirect_uri = redirect_uri
        return redirect_uri

    def generate_authorization_code(self):
        return secrets.token_urlsafe(48)

    def save_authorization_code(self, code, request):
        ctx = self.server.authorize_context
        data = request.payload.data
        AuthorizationCode.objects.create(
            provider=request.client.provider, user=request.user, session=ctx.get("session"),
            scope=request.scope or "", auth_time=ctx.get("auth_time"),
            expires=timezone.now() + parse(request.client.provider.access_code_validity),
            code_hash=hash_key(code), redirect_uri=request.payload.redirect_uri or "",
            nonce=data.get("nonce") or "", code_challenge=data.get("code_challenge") or "",
            code_challenge_method="S256" if data.get("code_challenge") else "")

    def query_authorization_code(self, code, client):
        row = (AuthorizationCode.objects.select_related("user", "session")
               .filter(code_hash=hash_key(code or ""), provider=client.provider).first())
        if row is None:
            return None
        if row.used:
            revoked = tokens.revoke_family(row)
            record("suspicious_request", user=row.user, client_ip=self.server.client_ip,
                   message="authorization code replayed; tokens issued from it revoked",
                   provider=client.provider.name, revoked=revoked)
            return None
        if row.is_expired() or not row.user.is_active:
            return None
        return row

    def authenticate_user(self, authorization_code):
        # Claim the code atomically after every check passed: of two racing redemptions one wins.
        if AuthorizationCode.objects.filter(pk=authorization_code.pk, used=False).update(used=True) != 1:
            tokens.revoke_family(authorization_code)
            raise InvalidGrantError("the code was already used")
        return authorization_code.user

    def delete_authorization_code(self, authorization_code):
        """Kept (marked used) so that a replay can be recognised and its tokens revoked."""

    def token_context(self) -> dict:
        code = self.request.authorization_code
        return {"session": code.session, "auth_time": code.auth_time, "nonce": code.nonce or None,
                "authorization_code": code}
