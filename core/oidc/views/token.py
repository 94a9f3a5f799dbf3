"""Back-channel endpoints: token (RFC 6749 §3.2), introspection (RFC 7662), revocation (RFC 7009)
and device authorization (RFC 8628 §3.1). Errors are RFC 6749 §5.2 JSON from authlib."""

from __future__ import annotations

from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.oidc.server import Server


@csrf_exempt  # client-authenticated API, not a browser form
@require_POST
def token(request):
    return Server(request).create_token_response(request)


@csrf_exempt
@require_POST
def introspect(request):
    return Server(request).create_endpoint_response("introspection", request)


@csrf_exempt
@require_POST
def revoke(request):
    return Server(request).create_endpoint_response("revocation", request)


@csrf_exempt
@require_POST
def device_authorization(request):
    return Server(request).create_endpoint_response("device_authorization", request)
