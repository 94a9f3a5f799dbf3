"""``/application/o/userinfo/`` (OIDC Core §5.3): the claims of the token's scopes.

The bearer token comes from the Authorization header (RFC 6750 §2.1) or a form field (§2.2). It must
be active (unexpired, unrevoked, active user, live session) and carry ``openid``; errors use the
RFC 6750 §3 ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.oidc import tokens
from core.oidc.claims import scope_claims, subject
from core.oidc.client import provider_for


def bearer_value(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        return request.POST.get("access_token") or None
    return None


def _challenge(status: int, error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["WWW-Authenticate"] = f'Bearer error="{error}", error_description="{description}"'
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@require_http_methods(["GET", "POST"])
def userinfo(request):
    row = tokens.find_access_token(bearer_value(request))
    if row is None or not tokens.is_active(row):
        return _challenge(401, "invalid_token", "the access token is unknown, expired or revoked")
    if "openid" not in row.scopes:
        return _challenge(403, "insufficient_scope", "the access token was not granted the openid scope")
    sid = row.session.sid if row.session is not None else None
    # The same provider with its scope mappings, cached per process under the configuration stamp (one query
    # instead of the mappings' own); the token row's join stands in when the provider is no client any more.
    cached = provider_for(row.provider.client_id)
    provider = cached if cached is not None and cached.pk == row.provider_id else row.provider
    claims = {"sub": subject(provider, row.user)}
    claims.update(scope_claims(provider, row.user, row.scopes, sid))
    claims["sub"] = subject(provider, row.user)
    if sid:
        claims["sid"] = sid
    else:
        claims.pop("sid", None)
    response = JsonResponse(claims)
    response["Cache-Control"] = "no-store"
    return response
