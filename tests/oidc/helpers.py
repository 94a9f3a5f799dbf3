"""Small HTTP helpers for the OIDC tests (the Django test client speaks to the real views)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from tests.oidc.conftest import REDIRECT, pkce_pair


def authorize_url(provider, *, redirect_uri: str = REDIRECT, scope: str = "openid profile email",
                  pkce: bool = True, **extra) -> tuple[str, str | None]:
    verifier, challenge = pkce_pair()
    params = {"client_id": provider.client_id, "redirect_uri": redirect_uri, "response_type": "code",
              "scope": scope, "state": "st4te"}
    if pkce:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    params = {k: v for k, v in params.items() if v is not None}
    return f"/application/o/authorize/?{urlencode(params)}", verifier if pkce else None


def code_from(response) -> str:
    assert response.status_code == 302, (response.status_code, response.content[:400])
    query = parse_qs(urlsplit(response["Location"]).query)
    assert "code" in query, response["Location"]
    return query["code"][0]


def get_code(client, provider, **kwargs) -> tuple[str, str | None]:
    url, verifier = authorize_url(provider, **kwargs)
    return code_from(client.get(url)), verifier


def token_request(client, provider, data: dict, *, basic: bool = False, secret: str | None = None):
    secret = provider.client_secret if secret is None else secret
    headers = {}
    if basic:
        import base64

        headers["Authorization"] = "Basic " + base64.b64encode(f"{provider.client_id}:{secret}".encode()).decode()
    else:
        data = {"client_id": provider.client_id, **({"client_secret": secret} if secret else {}), **data}
    return client.post("/application/o/token/", data=urlencode(data),
                       content_type="application/x-www-form-urlencoded", headers=headers)


def exchange(client, provider, code: str, verifier: str | None, redirect_uri: str = REDIRECT, **kw):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    return token_request(client, provider, data, **kw)


def introspect(client, provider, token: str):
    return client.post("/application/o/introspect/", data=urlencode({
        "client_id": provider.client_id, "client_secret": provider.client_secret, "token": token}),
        content_type="application/x-www-form-urlencoded")
