"""The authlib authorization server, built per request (it is a registry of grant classes, cheap to
make; keeping none at module level keeps the request's base URL and client address out of globals).
"""

from __future__ import annotations

import base64
import binascii
import functools
from urllib.parse import unquote

from authlib.integrations.django_oauth2 import AuthorizationServer
from authlib.integrations.django_oauth2.requests import DjangoOAuth2Payload, DjangoOAuth2Request
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from core.client_ip import client_ip
from core.oidc import discovery, tokens
from core.oidc.claims import subject
from core.oidc.client import Client, provider_for
from core.oidc.grants.authorization_code import AuthorizationCodeGrant
from core.oidc.grants.client_credentials import ClientCredentialsGrant, PasswordGrant
from core.oidc.grants.device_code import DeviceAuthorizationEndpoint, DeviceCodeGrant
from core.oidc.grants.pkce import S256CodeChallenge
from core.oidc.grants.refresh_token import RefreshTokenGrant
from core.oidc.models import AccessToken, OAuth2Provider
from core.system.base_url import request_base


def _find(value: str, hint: str | None):
    if hint == "refresh_token":
        return tokens.find_refresh_token(value) or tokens.find_access_token(value)
    return tokens.find_access_token(value) or tokens.find_refresh_token(value)


def basic_credentials_problem(authorization: str | None) -> str | None:
    """What makes ``Authorization: Basic`` client credentials unusable, or None.

    RFC 7617 §2.1 (the charset is UTF-8) and RFC 6749 §2.3.1 (client_id and client_secret are
    form-urlencoded, then joined with ``:``): bytes that are not UTF-8, or a control character (NUL
    above all: PostgreSQL cannot compare it) once percent-decoded, make a malformed request (400),
    not a 500 from authlib's decoder or the database. Base64 that does not decode is left to
    authlib, which answers invalid_client. The messages keep to the error_description charset
    (RFC 6749 §5.2: printable ASCII without double quote and backslash); authlib refuses others.
    """
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip())
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return ("the client_secret_basic credentials (Authorization: Basic) are not UTF-8 (RFC 7617 section 2.1): "
                "send base64 of the UTF-8 'client_id:client_secret', each form-urlencoded")
    if any(ord(c) < 0x20 or c == "\x7f" for c in unquote(text)):
        return ("the client_secret_basic credentials (Authorization: Basic) contain a control character "
                "(a NUL, %00, or a line break): check the client_id and client_secret")
    return None


class Introspection(IntrospectionEndpoint):
    """RFC 7662. Confidential client authentication is required (§2.1); a token of another client
    is reported inactive (THREATS 8; authentik CVE-2024-47077)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string, token_type_hint):
        return _find(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        return token.provider_id == client.provider.pk

    def introspect_token(self, token):
        if not tokens.is_active(token):
            return {"active": False}
        base = dict(token.claims) if isinstance(token, AccessToken) else {
            "sub": subject(token.provider, token.user),
            "aud": token.provider.client_id, "iss": self.server.issuer_for(token.provider)}
        base.update({"active": True, "scope": token.scope, "client_id": token.provider.client_id,
                     "exp": int(token.expires.timestamp()),
                     "token_type": "access_token" if isinstance(token, AccessToken) else "refresh_token"})
        if token.session is not None:
            base["sid"] = token.session.sid
        return base


class Revocation(RevocationEndpoint):
    """RFC 7009. Unknown tokens answer 200 (§2.2)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string, token_type_hint):
        return _find(token_string, token_type_hint)

    def revoke_token(self, token, request):
        type(token).objects.filter(pk=token.pk).update(revoked=True)


class PlainOrTLSRequest(DjangoOAuth2Request):
    """authlib refuses http:// request URIs unless a process-wide environment variable is set. The
    core listens on plain :9000 behind the TLS-terminating proxy, as authentik does, so the check
    is skipped here per request instead of globally; transport security is the deployment's."""

    def __init__(self, request):
        OAuth2Request.__init__(self, method=request.method, uri="https://core.invalid/", headers=request.headers)
        self.uri = request.build_absolute_uri()
        self.payload = DjangoOAuth2Payload(request)
        self._request = request


class Server(AuthorizationServer):
    def __init__(self, request):
        super().__init__(OAuth2Provider, AccessToken)
        self.http_request = request
        self.client_ip = client_ip(request)
        self.authorize_context: dict = {}
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(PasswordGrant)
        self.register_grant(DeviceCodeGrant)
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)
        self.register_endpoint(DeviceAuthorizationEndpoint)

    @functools.cached_property
    def base_url(self) -> str:
        """The base URL for the request's own host (core/system/base_url.py), read when first needed: introspecting
        an access token or revoking one needs none (on PostgreSQL + Redis the setting is a Redis round trip)."""
        return request_base(self.http_request)

    def create_oauth2_request(self, request):
        return PlainOrTLSRequest(request)

    def authenticate_client(self, request, methods, endpoint="token"):
        """Every client authentication (token, introspection, revocation, device) passes here first."""
        problem = basic_credentials_problem(request.headers.get("Authorization"))
        if problem:
            raise InvalidRequestError(problem)
        return super().authenticate_client(request, methods, endpoint)

    def issuer_for(self, provider) -> str:
        return discovery.issuer(provider, self.base_url)

    def query_client(self, client_id):
        if not client_id or not isinstance(client_id, str) or "\x00" in client_id:
            return None
        provider = provider_for(client_id)  # per process while the configuration is unchanged
        if provider is None:
            return None
        return Client(provider)

    def save_token(self, token, request):
        """Stored when issued (core.oidc.tokens.issue)."""

    def validate_requested_scope(self, scope):
        """Narrowed per client (Client.get_allowed_scope): scopes differ per provider."""

    def send_signal(self, name, *args, **kwargs):
        """No Django signals: events are recorded where the tokens are made."""
