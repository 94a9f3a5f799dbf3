"""Per-application metadata: discovery (OIDC Discovery §4, RFC 8414 §3) and the JWKS (RFC 7517)."""

from __future__ import annotations

from django.http import Http404, HttpResponseRedirect, JsonResponse

from core.accounts.models import Application
from core.oidc import keys
from core.oidc.discovery import build_discovery
from core.oidc.models import OAuth2Provider
from core.system.base_url import request_base


def provider_for(slug: str) -> OAuth2Provider:
    """The OAuth2 (or proxy) provider of the application ``slug``, or 404."""
    app = Application.objects.filter(slug=slug).first()
    provider = OAuth2Provider.objects.select_related("signing_key").filter(pk=app.provider_id).first() \
        if app is not None and app.provider_id else None
    if provider is None:
        raise Http404(f"no application {slug!r} with an OAuth2/OpenID provider")
    return provider


def _json(data: dict) -> JsonResponse:
    response = JsonResponse(data)
    response["Access-Control-Allow-Origin"] = "*"  # public metadata, read by browser-based clients
    return response


def discovery(request, slug: str):
    return _json(build_discovery(provider_for(slug), request_base(request)))


def discovery_redirect(request, slug: str):
    provider_for(slug)
    return HttpResponseRedirect(f"/application/o/{slug}/.well-known/openid-configuration")


def jwks(request, slug: str):
    return _json(keys.jwks(provider_for(slug)))
