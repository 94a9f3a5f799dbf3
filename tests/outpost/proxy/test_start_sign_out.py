"""/outpost.goauthentik.io/start and /sign_out as authentik users rely on them (issue 8 item 12).

* /start keeps a signed-in user's session: it only starts a login (authentik's outpost adds the login state to
  the session it has). A login that completes replaces the session (a fresh id, the old one deleted: THREATS
  7); one that is abandoned leaves it as it was. The login state is bound to the browser's cookie without
  putting the session id into the authorize URL.
* /sign_out always ends at the provider's end-session endpoint (the core's invalidation flow), also without an
  outpost session -- never a new login, which would silently succeed while the core session lives.
"""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from outpost.proxy.oauth import STATE_TTL
from outpost.proxy.session import Session, new_session_id, sign_cookie

from .conftest import provider_json, start_outpost
from .fake_idp import FakeIdP

HOST = "ext.t.goauthentik.io"
FWD = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HOST}


@pytest.fixture
async def env():
    idp = await FakeIdP(alg="RS256").start()
    client, outpost = await start_outpost()
    outpost.update([provider_json(oidc_configuration=idp.oidc_configuration(), client_id=idp.client_id,
                                  client_secret=idp.client_secret)], outpost_name="test-outpost")
    yield idp, client, outpost
    await client.close()
    await idp.close()


def set_cookies(response) -> dict[str, str]:
    jar = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


async def auth(client, uri, cookie=None):
    headers = {**FWD, "X-Forwarded-Uri": uri}
    if cookie:
        headers["Cookie"] = cookie
    return await client.get("/outpost.goauthentik.io/auth/traefik", headers=headers, allow_redirects=False)


async def callback(idp, client, location, cookie):
    code, q = idp.authorize(location)
    return await auth(client, f"/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code={code}"
                              f"&state={q['state']}", cookie)


async def signed_in(idp, client, outpost) -> str:
    name = outpost.apps.lookup(HOST).cookie_name
    r = await auth(client, "/")
    pre = set_cookies(r)[name]
    r = await callback(idp, client, r.headers["Location"], f"{name}={pre}")
    assert r.status == 302, await r.text()
    return f"{name}={set_cookies(r)[name]}"


async def start(client, cookie=None, rd="/next"):
    headers = {"Host": HOST, **({"Cookie": cookie} if cookie else {})}
    return await client.get("/outpost.goauthentik.io/start", params={"rd": rd}, headers=headers,
                            allow_redirects=False)


async def test_start_keeps_the_session_of_a_signed_in_user(env):
    idp, client, outpost = env
    cookie = await signed_in(idp, client, outpost)
    r = await start(client, cookie)
    assert r.status == 302 and r.headers["Location"].startswith(idp.url("/authorize"))
    name, value = cookie.split("=", 1)
    assert set_cookies(r).get(name, value) == value, "the session cookie must not be replaced by a pre-login id"
    assert (await auth(client, "/page", cookie)).status == 200  # abandoned: still signed in
    # a bookmark, a second tab, another site's link: any number of visits, still signed in
    for _ in range(3):
        await start(client, cookie)
    assert (await auth(client, "/page", cookie)).status == 200


async def test_start_does_not_put_the_session_id_in_the_authorize_url(env):
    idp, client, outpost = env
    cookie = await signed_in(idp, client, outpost)
    session_id = cookie.split("=", 1)[1].split(".")[0]
    r = await start(client, cookie)
    assert session_id not in r.headers["Location"]
    state = parse_qs(urlsplit(r.headers["Location"]).query)["state"][0]
    assert session_id not in str(jwt.decode(state, options={"verify_signature": False}))


async def test_a_login_that_completes_replaces_the_session(env):
    idp, client, outpost = env
    name = outpost.apps.lookup(HOST).cookie_name
    old = await signed_in(idp, client, outpost)
    r = await start(client, old)
    r = await callback(idp, client, r.headers["Location"], old)
    assert r.status == 302 and r.headers["Location"] == f"https://{HOST}/next", await r.text()
    new = f"{name}={set_cookies(r)[name]}"
    assert new != old  # a fresh id at login (THREATS 7)
    assert (await auth(client, "/page", new)).status == 200
    assert (await auth(client, "/page", old)).status == 302  # the replaced session is gone from the store


async def test_start_without_a_session_sets_a_pre_login_id(env):
    idp, client, outpost = env
    name = outpost.apps.lookup(HOST).cookie_name
    r = await start(client)
    pre = set_cookies(r)[name]
    r = await callback(idp, client, r.headers["Location"], f"{name}={pre}")
    assert r.status == 302 and set_cookies(r)[name].split(".")[0] != pre.split(".")[0]


async def test_sign_out_without_an_outpost_session_ends_at_the_end_session_endpoint(env):
    idp, client, outpost = env
    name = outpost.apps.lookup(HOST).cookie_name
    for cookie in (None, f"{name}=garbage", f"{name}={set_cookies(await start(client))[name]}"):
        headers = {"Host": HOST, **({"Cookie": cookie} if cookie else {})}
        r = await client.get("/outpost.goauthentik.io/sign_out", headers=headers, allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == idp.url("/end-session"), (cookie, r.headers["Location"])
        r = await auth(client, "/?X-authentik-logout=true", cookie)
        assert r.status == 302 and r.headers["Location"] == idp.url("/end-session"), (cookie, r.headers["Location"])


async def test_sign_out_with_a_session_ends_it_and_goes_to_end_session(env):
    idp, client, outpost = env
    cookie = await signed_in(idp, client, outpost)
    r = await client.get("/outpost.goauthentik.io/sign_out", headers={"Host": HOST, "Cookie": cookie},
                         allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith(idp.url("/end-session") + "?id_token_hint=")
    assert (await auth(client, "/page", cookie)).status == 302


async def test_start_with_a_session_about_to_expire_keeps_it_long_enough(env):
    """The session cookie's Max-Age is the token's: when it would end before a login (STATE_TTL) could come
    back, the same value is re-sent for STATE_TTL, so the callback still finds the browser's binding."""
    idp, client, outpost = env
    app = outpost.apps.lookup(HOST)
    session = Session(new_session_id(), app.client_id, {"sub": "s", "preferred_username": "a"}, "tok",
                      expires_at=time.time() + 60)
    await outpost.store.put(session)
    value = sign_cookie(session.id, cookie_secret=app.cookie_secret, client_id=app.client_id)
    r = await start(client, f"{app.cookie_name}={value}")
    jar = SimpleCookie()
    jar.load(r.headers["Set-Cookie"])
    assert jar[app.cookie_name].value == value and int(jar[app.cookie_name]["max-age"]) == STATE_TTL
    r = await callback(idp, client, r.headers["Location"], f"{app.cookie_name}={value}")
    assert r.status == 302 and r.headers["Location"] == f"https://{HOST}/next"
    assert set_cookies(r)[app.cookie_name] != value
