"""A small in-process OIDC provider for the outpost's login tests: /token (code + PKCE S256, and authentik's
client_credentials with username + app password), /introspect (RFC 7662) and /jwks, signing with RS256 (a
fresh key) or HS256 (the client secret), as authentik's proxy providers do.

The introspection endpoint is deliberately naive: it answers for ANY token to any authenticated client
(as authentik did before CVE-2024-47077), so the tests show the outpost's own client_id check holds."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class FakeIdP:
    client_id: str = "test-client"
    client_secret: str = "test-secret-0123456789abcdefghijklmnop"
    alg: str = "RS256"
    issuer: str = ""
    codes: dict = field(default_factory=dict)
    token_requests: list = field(default_factory=list)
    overrides: dict = field(default_factory=dict)  # claims to change in issued tokens
    id_overrides: dict = field(default_factory=dict)
    server: TestServer | None = None
    jwks_key: object = None  # serve another key than the signing one
    bearer_tokens: dict = field(default_factory=dict)  # token -> introspection body (without "active")
    app_passwords: dict = field(default_factory=dict)  # (username, password) -> claims
    introspect_requests: list = field(default_factory=list)
    other_clients: dict = field(default_factory=dict)  # client_id -> secret, also allowed to introspect
    fail_status: int | None = None  # answer every token/introspect request with this status

    def __post_init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(4)

    async def start(self):
        app = web.Application()
        app.router.add_post("/token", self.token)
        app.router.add_post("/introspect", self.introspect)
        app.router.add_get("/jwks", self.jwks)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        self.issuer = self.issuer or str(self.server.make_url("/application/o/app/"))
        return self

    async def close(self):
        await self.server.close()

    def url(self, path):
        return str(self.server.make_url(path))

    def oidc_configuration(self):
        return {"issuer": self.issuer, "authorization_endpoint": self.url("/authorize"),
                "token_endpoint": self.url("/token"), "jwks_uri": self.url("/jwks"),
                "end_session_endpoint": self.url("/end-session"), "introspection_endpoint": self.url("/introspect"),
                "id_token_signing_alg_values_supported": [self.alg]}

    def authorize(self, authorize_url, sub="user-sub", **claims):
        """What the core's /authorize does after a successful login: a code bound to the request."""
        q = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"q": q, "sub": sub, "claims": claims}
        return code, q

    def sign(self, claims, alg=None):
        alg = alg or self.alg
        if alg == "HS256":
            return jwt.encode(claims, self.client_secret, algorithm="HS256")
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def issue_bearer(self, sub="user-sub", client_id=None, active=True, exp_in=300, **claims):
        """An opaque access token the core would have issued to ``client_id`` (default: ours)."""
        token = secrets.token_urlsafe(24)
        now = int(time.time())
        client = client_id or self.client_id
        self.bearer_tokens[token] = {"active": active, "sub": sub, "client_id": client, "aud": client,
                                     "iss": self.issuer, "exp": now + exp_in, "iat": now, "scope": "openid profile",
                                     "preferred_username": "alice", "groups": ["staff"], **claims}
        return token

    def _client_ok(self, form):
        known = {self.client_id: self.client_secret, **self.other_clients}
        return form.get("client_id") in known and known[form["client_id"]] == form.get("client_secret")

    async def introspect(self, request):
        form = dict(await request.post())
        self.introspect_requests.append(form)
        if self.fail_status:
            return web.json_response({"error": "server_error"}, status=self.fail_status)
        if not self._client_ok(form):
            return web.json_response({"active": False})
        body = self.bearer_tokens.get(form.get("token"))
        if body is None or not body["active"]:
            return web.json_response({"active": False})
        return web.json_response(body)

    async def client_credentials(self, form):
        claims = self.app_passwords.get((form.get("username"), form.get("password")))
        if claims is None or form.get("client_id") != self.client_id:
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        base = {"iss": self.issuer, "sub": "user-sub", "aud": self.client_id, "exp": now + 300, "iat": now,
                "preferred_username": form["username"], **claims}
        return web.json_response({"access_token": self.sign({**base, "azp": self.client_id}),
                                  "id_token": self.sign({**base, **self.id_overrides}), "token_type": "Bearer",
                                  "expires_in": 300})

    async def token(self, request):
        form = dict(await request.post())
        self.token_requests.append(form)
        if self.fail_status:
            return web.json_response({"error": "server_error"}, status=self.fail_status)
        if form.get("grant_type") == "client_credentials":
            return await self.client_credentials(form)
        grant = self.codes.pop(form.get("code"), None)
        if grant is None or form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return web.json_response({"error": "invalid_grant"}, status=400)
        q = grant["q"]
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if q.get("code_challenge_method") != "S256" or challenge != q.get("code_challenge"):
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        if form.get("redirect_uri") != q.get("redirect_uri"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        base = {"iss": self.issuer, "sub": grant["sub"], "aud": self.client_id, "exp": now + 300, "iat": now,
                "nonce": q.get("nonce"), "sid": "core-session-hash", "preferred_username": "alice",
                "groups": ["staff"], **grant["claims"]}
        access = self.sign({**base, "azp": self.client_id, "scope": q.get("scope", ""), **self.overrides})
        id_token = self.sign({**base, **self.id_overrides})
        return web.json_response({"access_token": access, "id_token": id_token, "token_type": "Bearer",
                                  "expires_in": 300})

    async def jwks(self, request):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk((self.jwks_key or self.key).public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return web.json_response({"keys": [jwk]})
