"""outpost/proxy/oauth.py against an in-process fake IdP: PKCE S256, nonce, expiring bound state,
RS256 via JWKS and HS256 via client_secret, every verification failure refused."""

import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest

from outpost.proxy import oauth
from outpost.proxy.apps import AppConfig
from outpost.proxy.oauth import JWKSCache, OAuthError
from outpost.proxy.session import new_session_id

from .conftest import provider_json
from .fake_idp import FakeIdP


@pytest.fixture(params=["RS256", "HS256"])
async def idp(request):
    server = await FakeIdP(alg=request.param).start()
    yield server
    await server.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def app_for(idp, **overrides):
    return AppConfig.from_json(provider_json(oidc_configuration=idp.oidc_configuration(),
                                             client_id=idp.client_id, client_secret=idp.client_secret, **overrides))


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_authorize_url_shape():
    app = AppConfig.from_json(provider_json())
    url = oauth.authorize_url(app, new_session_id(), "https://ext.t.goauthentik.io/x")
    assert url.startswith("http://fake-auth.t.goauthentik.io/auth?client_id=test-client&code_challenge=")
    q = query(url)
    assert q["code_challenge_method"] == "S256" and q["response_type"] == "code" and len(q["nonce"]) >= 32
    assert q["redirect_uri"] == "https://ext.t.goauthentik.io/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"
    assert q["scope"] == "ak_proxy email entitlements openid profile"
    assert list(q) == sorted(q)  # Go's sorted query, as authentik's tests assert
    state = jwt.decode(q["state"], app.cookie_secret, algorithms=["HS256"], issuer="goauthentik.io/outpost/test-client")
    assert state["exp"] - state["iat"] == oauth.STATE_TTL and state["redirect"] == "https://ext.t.goauthentik.io/x"
    assert "code_verifier" not in state and q["code_challenge"] not in url.split("state=")[1]


def test_state_checks():
    app = AppConfig.from_json(provider_json())
    pre = new_session_id()
    q = query(oauth.authorize_url(app, pre, "/r"))
    st = oauth.parse_state(app, q["state"], pre)
    assert st.sid == pre and st.redirect == "/r" and st.nonce == q["nonce"]
    for token, cookie in [
        (q["state"], new_session_id()),  # another browser
        (q["state"], None),  # cookie gone
        (None, pre), ("", pre), ("garbage", pre), ("x" * 9000, pre),
        (jwt.encode({"iss": "goauthentik.io/outpost/test-client", "sid": oauth.browser_binding(pre), "nonce": "n", "redirect": "/",
                     "state": "s", "exp": int(time.time()) + 60}, "wrong-secret", algorithm="HS256"), pre),
        (jwt.encode({"iss": "goauthentik.io/outpost/test-client", "sid": oauth.browser_binding(pre), "nonce": "n", "redirect": "/",
                     "state": "s", "exp": int(time.time()) - 1}, app.cookie_secret, algorithm="HS256"), pre),
        (jwt.encode({"iss": "goauthentik.io/outpost/test-client", "sid": oauth.browser_binding(pre), "nonce": "n", "redirect": "/",
                     "state": "s"}, app.cookie_secret, algorithm="HS256"), pre),  # no exp (authentik's quirk)
        (jwt.encode({"iss": "goauthentik.io/outpost/other", "sid": oauth.browser_binding(pre), "nonce": "n", "redirect": "/",
                     "state": "s", "exp": int(time.time()) + 60}, app.cookie_secret, algorithm="HS256"), pre),
        (jwt.encode({"iss": "goauthentik.io/outpost/test-client", "sid": oauth.browser_binding(pre), "nonce": "n", "redirect": "/",
                     "state": "s", "exp": int(time.time()) + 60}, "", algorithm="none"), pre),
    ]:
        with pytest.raises(OAuthError) as exc:
            oauth.parse_state(app, token, cookie)
        assert exc.value.status == 400


async def login(idp, http, app, **claims):
    pre = new_session_id()
    url = oauth.authorize_url(app, pre, "https://ext.t.goauthentik.io/after")
    code, q = idp.authorize(url, **claims)
    state = oauth.parse_state(app, q["state"], pre)
    return await oauth.redeem(app, http, JWKSCache(), code=code, state=state, prelogin_id=pre)


async def test_full_login(idp, http):
    app = app_for(idp)
    tokens = await login(idp, http, app)
    assert tokens.claims["sub"] == "user-sub" and tokens.claims["aud"] == "test-client"
    assert tokens.expires_at > time.time() and tokens.id_token
    form = idp.token_requests[-1]
    assert form["grant_type"] == "authorization_code" and form["client_secret"] == idp.client_secret
    assert len(form["code_verifier"]) == 43


async def test_code_is_useless_without_the_browser_cookie(idp, http):
    """Someone holding the callback URL (code + state) but not the HttpOnly cookie cannot redeem it."""
    app = app_for(idp)
    pre = new_session_id()
    code, q = idp.authorize(oauth.authorize_url(app, pre, "/"))
    with pytest.raises(OAuthError):
        oauth.parse_state(app, q["state"], new_session_id())
    state = oauth.parse_state(app, q["state"], pre)
    with pytest.raises(OAuthError):  # right state, wrong verifier (derived from another pre-login id)
        await oauth.redeem(app, http, JWKSCache(), code=code, state=state, prelogin_id=new_session_id())


@pytest.mark.parametrize("override,kind", [
    ({"aud": "other-client"}, "access"), ({"iss": "https://evil/"}, "access"), ({"exp": 1}, "access"),
    ({"nonce": "wrong"}, "id"), ({"sub": "someone-else"}, "id"), ({"aud": "other-client"}, "id"),
])
async def test_bad_tokens_refused(idp, http, override, kind):
    app = app_for(idp)
    (idp.overrides if kind == "access" else idp.id_overrides).update(override)
    with pytest.raises(OAuthError):
        await login(idp, http, app)


async def test_wrong_signature_refused(http):
    idp = await FakeIdP(alg="RS256").start()
    try:
        idp.jwks_key = FakeIdP().key  # same kid, another key: the signature cannot verify
        with pytest.raises(OAuthError):
            await login(idp, http, app_for(idp))
    finally:
        await idp.close()


async def test_hs256_token_refused_when_provider_is_rs256(http):
    """Algorithm confusion: an RS256 provider's outpost never accepts an HS256 token."""
    idp = await FakeIdP(alg="RS256").start()
    try:
        app = app_for(idp)
        orig_sign = idp.sign
        idp.sign = lambda claims, alg=None: orig_sign(claims, "HS256")
        with pytest.raises(OAuthError):
            await login(idp, http, app)
    finally:
        await idp.close()


async def test_token_endpoint_errors(idp, http):
    app = app_for(idp)
    pre = new_session_id()
    url = oauth.authorize_url(app, pre, "/")
    state = oauth.parse_state(app, query(url)["state"], pre)
    with pytest.raises(OAuthError) as exc:
        await oauth.redeem(app, http, JWKSCache(), code="unknown", state=state, prelogin_id=pre)
    assert exc.value.status == 400
    with pytest.raises(OAuthError):
        await oauth.redeem(app, http, JWKSCache(), code=None, state=state, prelogin_id=pre)
    code, _ = idp.authorize(url)
    await oauth.redeem(app, http, JWKSCache(), code=code, state=state, prelogin_id=pre)
    with pytest.raises(OAuthError):  # single use at the fake IdP
        await oauth.redeem(app, http, JWKSCache(), code=code, state=state, prelogin_id=pre)


async def test_idp_unreachable(http):
    data = provider_json()
    data["oidc_configuration"]["token_endpoint"] = "http://127.0.0.1:9/token"
    app = AppConfig.from_json(data)
    pre = new_session_id()
    state = oauth.parse_state(app, query(oauth.authorize_url(app, pre, "/"))["state"], pre)
    with pytest.raises(OAuthError) as exc:
        await oauth.redeem(app, http, JWKSCache(), code="c", state=state, prelogin_id=pre)
    assert exc.value.status == 502


def test_end_session_url():
    app = AppConfig.from_json(provider_json())
    assert oauth.end_session_url(app, "tok") == "http://fake-auth.t.goauthentik.io/end-session?id_token_hint=tok"
    assert oauth.end_session_url(app, "") == "http://fake-auth.t.goauthentik.io/end-session"
