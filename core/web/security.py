"""Response headers every page the core renders gets (issue 8 item 11).

* ``Secure`` on every cookie set in an answer to an HTTPS request: directly on :9443, or on :9000 behind a
  trusted proxy that says ``X-Forwarded-Proto: https`` (core/wsgi.py decides the scheme; Django's
  ``request.is_secure()`` reads it). Plain HTTP on :9000 keeps working: there the cookies cannot be Secure.
* A Content-Security-Policy: scripts, styles, fonts and connections only from this origin, no inline script,
  images also as ``data:`` URIs (the TOTP QR code, avatars), no plugins, no ``<base>``, no framing. The one
  script of the flow page (WebAuthn) is a static file for it. DRF's browsable API positions elements with
  ``style`` attributes, so its pages allow inline styles (never inline scripts); Django's debug pages
  (``AUTHENTIK_DEBUG``, never in production) need inline script and style.

No ``form-action``: a flow's POST ends in a redirect to the application (an OAuth2 ``redirect_uri``), which
browsers check against ``form-action`` too.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.renderers import BrowsableAPIRenderer

HEADER = "Content-Security-Policy"
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
          "base-uri 'none'; frame-ancestors 'none'")
BROWSABLE_API_POLICY = POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
DEBUG_POLICY = POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'")


def policy_for(response) -> str:
    if settings.DEBUG:
        return DEBUG_POLICY
    if isinstance(getattr(response, "accepted_renderer", None), BrowsableAPIRenderer):
        return BROWSABLE_API_POLICY
    return POLICY


class SecurityHeadersMiddleware:
    """Placed before the session and CSRF middlewares, so it sees the cookies they set."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        if HEADER not in response:
            response[HEADER] = policy_for(response)
        return response
