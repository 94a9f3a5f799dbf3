"""Forward auth with the REAL core and the REAL embedded outpost behind real Traefik, Caddy and nginx.

One ``ak server`` per module (its embedded outpost serves /outpost.goauthentik.io/* on the core's port);
per proxy kind one proxy process and one application (a proxy provider in forward_single mode whose
external host is the proxy's ``http://app.test:<port>``), bound to the group ``staff``. A "browser"
(tests/e2e/support/browser.py) logs in through the flow executor API (tests/e2e/support/stack.py).
"""

from __future__ import annotations

import html
import json
import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.e2e.support.browser import Browser
from tests.e2e.support.live import Site
from tests.e2e.support.proxies import KINDS
from tests.e2e.support.stack import App, Stack, login, until
from tests.e2e.support.upstream import header_values

pytestmark = pytest.mark.e2e

GROUP = "staff"
PASSWORD = "Correct-Horse-e2e-7!"  # noqa: S105 - a test password
REVOKED_WITHIN = 5.0  # the contract is 1 s; the bound only keeps a broken build from hanging
SKIP = "^/public/.*"  # the applications' unauthenticated paths
IDENTITY = ("X-authentik-username", "X-authentik-groups", "X-authentik-email", "X-authentik-name",
            "X-authentik-uid")


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, dict]:
    return {
        "alice": stack.user("alice", PASSWORD, [GROUP], name="Alice Liddell", email="alice@example.test"),
        "bob": stack.user("bob", PASSWORD, [], name="Bob Outsider"),
    }


@pytest.fixture(scope="module", params=KINDS)
def site(request, stack: Stack, proxy_factory, upstream) -> Iterator[Site]:
    kind = request.param
    proxy = proxy_factory(kind, outpost=stack.outpost_address, upstream=upstream.address)
    app = stack.add_app(f"app-{kind}", proxy.external_url, group=GROUP, skip_path_regex=SKIP)
    yield Site(kind, proxy, app)
    proxy.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


def single(described: dict, name: str) -> str | None:
    values = header_values(described, name)
    assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
    return values[0] if values else None


def debug(site: Site, stack: Stack, browser: Browser) -> str:
    return f"hops:\n{browser.trail()}\n--- {site.kind} ---\n{site.proxy.log_text()[-3000:]}\n{stack.logs()}"


def test_login_passes_identity_to_the_app(site, stack, people, browser, observe):
    result = login(browser, site.url("/private/page?x=1"), "alice", PASSWORD)
    assert result.first.status_code == 302, debug(site, stack, browser)
    r = result.response
    assert r.status_code == 200 and r.headers.get("x-upstream") == "echo", \
        f"{r.status_code} {r.text[:300]}\n{debug(site, stack, browser)}"
    seen = r.json()
    assert (seen["path"], seen["query"]) == ("/private/page", "x=1")
    alice = people["alice"]
    got = {name: single(seen, name) for name in IDENTITY}
    assert got["X-authentik-username"] == "alice"
    assert got["X-authentik-groups"] == GROUP
    assert got["X-authentik-email"] == "alice@example.test"
    assert got["X-authentik-name"] == "Alice Liddell"
    assert got["X-authentik-uid"] == alice["uid"], alice
    observe(site.kind, "real outpost: login hops (status host path)",
            [f"{h.status} {urlsplit(h.url).netloc.split(':')[0]} {urlsplit(h.url).path}" for h in browser.hops])


def signed_in(site: Site, stack: Stack, browser: Browser, username: str) -> httpx.Response:
    """Log ``username`` in at ``site`` and return the app's answer (asserting it is the echo upstream's)."""
    result = login(browser, site.url("/"), username, PASSWORD)
    assert result.response.status_code == 200 and result.response.headers.get("x-upstream") == "echo", \
        f"{result.response.status_code} {result.response.text[:300]}\n{debug(site, stack, browser)}"
    return result.response


def test_anonymous_is_sent_to_log_in(site, stack, browser, observe):
    """Traefik/Caddy: the auth answer's 302 into the core's authorize endpoint; nginx: 401 -> error_page ->
    302 to the outpost's /start with the original URL in ``rd``, which then redirects to authorize."""
    url = site.url("/deep/link?a=1&b=2")
    r = browser.get(url)
    assert r.status_code == 302, f"{r.status_code} {r.text[:200]}\n{debug(site, stack, browser)}"
    location = r.headers["location"]
    if site.kind == "nginx":  # the original URL unencoded in rd (the recipe's $request_uri)
        assert location == f"{site.proxy.external_url}/outpost.goauthentik.io/start?rd={url}", location
        r = browser.get(location)
        assert r.status_code == 302, f"/start: {r.status_code} {r.text[:200]}"
        location = r.headers["location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == stack.core_url + "/application/o/authorize/", location
    query = parse_qs(parts.query)
    assert query["client_id"] == [site.app.client_id]
    assert query["redirect_uri"] == [site.url("/outpost.goauthentik.io/callback?X-authentik-auth-callback=true")]
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    assert state_redirect(query["state"][0]) == url  # the whole URL comes back after login, b=2 included
    assert r.headers.get("x-upstream") is None
    assert any(c.name == site.app.cookie_name for c in browser.cookies.jar), "pre-login cookie relayed"
    observe(site.kind, "real outpost: anonymous GET answered", [r.status_code, parts.path])


def test_client_identity_headers_never_reach_the_app(site, stack, people, browser):
    signed_in(site, stack, browser, "alice")
    spoof = {"X-authentik-username": "mallory", "X-Authentik-Groups": "admins", "x-authentik-uid": "0",
             "X-authentik-email": "mallory@evil.test", "X-authentik-name": "Mallory"}
    r = browser.get(site.url("/again"), headers=spoof)
    assert r.status_code == 200, r.text[:300]
    seen = r.json()
    assert single(seen, "X-authentik-username") == "alice"
    assert single(seen, "X-authentik-groups") == GROUP
    assert single(seen, "X-authentik-uid") == people["alice"]["uid"]
    assert single(seen, "X-authentik-email") == "alice@example.test"
    assert single(seen, "X-authentik-name") == "Alice Liddell"


def test_session_id_rotates_at_login(site, stack, people, browser):
    """THREATS 7: the pre-login cookie value is never the signed-in session's."""
    browser.follow(site.url("/"))  # to the login page (nginx: the cookie comes with /start's answer)
    before = browser.cookie(site.app.cookie_name)
    assert before
    signed_in(site, stack, browser, "alice")
    after = browser.cookie(site.app.cookie_name)
    assert after and after != before
    with Browser() as fixer:  # an attacker who planted the pre-login value gains nothing
        fixer.cookies.set(site.app.cookie_name, before, domain="app.test")
        r = fixer.get(site.url("/"))
        assert r.status_code == 302 and r.headers.get("x-upstream") is None


def test_user_outside_the_group_is_refused_at_login(site, stack, people, browser, observe):
    result = login(browser, site.url("/"), "bob", PASSWORD)
    r = result.response
    assert r.status_code == 403, f"{r.status_code} {r.text[:300]}\n{debug(site, stack, browser)}"
    assert urlsplit(str(r.request.url)).path == "/application/o/authorize/", browser.trail()
    assert site.app.name in r.text  # the core's access-denied page names the application
    assert not any("/outpost.goauthentik.io/callback" in hop.url for hop in browser.hops), browser.trail()
    again = browser.get(site.url("/"))  # still not signed in at the application
    assert again.status_code == 302 and again.headers.get("x-upstream") is None
    observe(site.kind, "real outpost: outsider's login ends at", [r.status_code, urlsplit(str(r.request.url)).path])


def test_removed_from_group_after_login_gets_403(site, stack, browser, observe):
    """THREATS 12: the outpost decides on every request with the core's current bindings."""
    carol = stack.user(f"carol-{site.kind}", PASSWORD, [GROUP])
    signed_in(site, stack, browser, carol["username"])
    stack.set_groups(carol, [])
    changed = time.monotonic()

    def refused() -> httpx.Response | None:
        r = browser.get(site.url("/after-removal"))
        assert r.status_code in (200, 403), f"{r.status_code} {r.text[:200]}"
        return r if r.status_code == 403 else None

    r = until(refused, REVOKED_WITHIN, "403 after removal from the group",
              lambda: debug(site, stack, browser))
    elapsed = time.monotonic() - changed
    assert r.headers.get("x-upstream") is None
    observe(site.kind, "real outpost: removed from the group -> client gets (status, body, seconds)",
            [r.status_code, r.text[:30], round(elapsed, 3)])
    stack.set_groups(carol, [GROUP])  # and back: allowed again, without logging in again
    until(lambda: browser.get(site.url("/back")).status_code == 200, REVOKED_WITHIN, "200 after re-adding")


def test_sign_out_ends_the_session(site, stack, browser, observe):
    dave = stack.user(f"dave-{site.kind}", PASSWORD, [GROUP])
    signed_in(site, stack, browser, dave["username"])
    old = browser.cookie(site.app.cookie_name)
    r = browser.get(site.url("/outpost.goauthentik.io/sign_out"))
    assert r.status_code == 302, f"{r.status_code} {r.text[:200]}\n{debug(site, stack, browser)}"
    final = browser.follow_from(r)
    assert final.status_code == 200 and "signed out" in final.text.lower(), \
        f"{final.status_code} {final.text[:300]}\n{browser.trail()}"
    assert browser.cookie(site.app.cookie_name) in (None, ""), "the outpost's cookie is cleared"
    # back to login: the app sends the browser into a login again, and the core asks for credentials
    page = browser.follow(site.url("/"))
    assert urlsplit(str(page.request.url)).path.startswith("/if/flow/"), browser.trail()
    # the old cookie no longer works, in this browser or any other
    with Browser() as replay:
        replay.cookies.set(site.app.cookie_name, old, domain="app.test")
        r = replay.get(site.url("/"))
        assert r.status_code == 302 and r.headers.get("x-upstream") is None, f"{r.status_code} {r.text[:200]}"
    observe(site.kind, "real outpost: sign_out hops", [f"{h.status} {urlsplit(h.url).path}" for h in browser.hops[-6:]])


def test_start_link_keeps_the_session(site, stack, browser, observe):
    """A signed-in user who opens a start link (a bookmark, a second tab, another site's link) stays signed in
    (authentik keeps the session and only adds the login state; issue 8 item 12). Abandoned: the session
    works as before. Completed (silently, the core session lives): the session is replaced, the old cookie
    value no longer works anywhere."""
    gus = stack.user(f"gus-{site.kind}", PASSWORD, [GROUP])
    signed_in(site, stack, browser, gus["username"])
    old = browser.cookie(site.app.cookie_name)
    start = browser.get(site.url("/outpost.goauthentik.io/start?rd=") + site.url("/after-start"))
    assert start.status_code == 302 and "/application/o/authorize/" in start.headers["location"], \
        f"{start.status_code} {start.headers.get('location')}\n{debug(site, stack, browser)}"
    assert browser.cookie(site.app.cookie_name) == old, "the start link replaced the session cookie"
    r = browser.get(site.url("/still-in"))  # abandoned login: still signed in
    assert r.status_code == 200 and single(r.json(), "X-authentik-username") == gus["username"], \
        f"{r.status_code} {r.text[:200]}\n{debug(site, stack, browser)}"
    final = browser.follow_from(start)  # the login completes without a form: the core session lives
    assert final.status_code == 200 and final.json()["path"] == "/after-start", browser.trail()
    new = browser.cookie(site.app.cookie_name)
    assert new and new != old
    with Browser() as replay:
        replay.cookies.set(site.app.cookie_name, old, domain="app.test")
        r = replay.get(site.url("/"))
        assert r.status_code == 302 and r.headers.get("x-upstream") is None, f"{r.status_code} {r.text[:200]}"
    observe(site.kind, "real outpost: start while signed in, hops", [f"{h.status} {urlsplit(h.url).path}"
                                                                    for h in browser.hops[-5:]])


def confirm_sign_out(browser: Browser, page: httpx.Response) -> httpx.Response:
    """Without an id_token_hint the core may ask before ending the session (OpenID Connect RP-Initiated Logout
    §2; its "Sign out?" page): submit that form as the user would. Any other page is returned as it is."""
    form = re.search(r'<form method="post" action="([^"]+)">', page.text)
    if form is None or "end-session" not in form.group(1):
        return page
    fields = {html.unescape(k): html.unescape(v)
              for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)}
    return browser.follow(urljoin(str(page.request.url), html.unescape(form.group(1))), method="POST", data=fields)


def test_sign_out_without_an_outpost_session_still_signs_out(site, stack, browser, observe):
    """sign_out when the outpost has no session for this browser (its cookie expired or cleared, another
    application signed out first) goes to the provider's end-session, which ends the core session -- not into
    a new login that would silently succeed and leave the user signed in (issue 8 item 12)."""
    fay = stack.user(f"fay-{site.kind}", PASSWORD, [GROUP])
    signed_in(site, stack, browser, fay["username"])
    browser.cookies.delete(site.app.cookie_name)
    r = browser.get(site.url("/outpost.goauthentik.io/sign_out"))
    assert r.status_code == 302, f"{r.status_code} {r.text[:200]}\n{debug(site, stack, browser)}"
    assert r.headers["location"] == f"{stack.core_url}/application/o/{site.app.slug}/end-session/", \
        r.headers["location"]
    final = confirm_sign_out(browser, browser.follow_from(r))
    assert final.status_code == 200 and "signed out" in final.text.lower(), \
        f"{final.status_code} {final.text[:300]}\n{browser.trail()}"
    page = browser.follow(site.url("/"))  # the core asks for credentials again: really signed out
    assert urlsplit(str(page.request.url)).path.startswith("/if/flow/"), browser.trail()
    observe(site.kind, "real outpost: sign_out without an outpost session, hops",
            [f"{h.status} {urlsplit(h.url).path}" for h in browser.hops[-4:]])


@pytest.mark.parametrize("headers", [{"Accept": "application/json"}, {"X-Requested-With": "XMLHttpRequest"}],
                         ids=["accept-json", "x-requested-with"])
def test_xhr_gets_401_not_a_redirect(site, browser, headers):
    """THREATS 10, with the real outpost (nginx: its error_page would otherwise turn the 401 into a 302)."""
    r = browser.get(site.url("/api/data"), headers=headers)
    assert r.status_code == 401, f"{site.kind}: {r.status_code} {r.headers.get('location')}"
    assert r.headers.get("x-upstream") is None


def test_preflight_gets_401(site, browser):
    r = browser.request("OPTIONS", site.url("/api/data"), headers={
        "Origin": "http://other.test", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 401, f"{site.kind}: {r.status_code} {r.headers.get('location')}"


@pytest.mark.parametrize("rd", ["http://evil.test/steal", "//evil.test/steal", "/\\evil.test/steal",
                                "http://app.test.evil.test/", "javascript:alert(1)"])
def test_open_redirect_rd_is_refused(site, stack, browser, rd):
    """THREATS 6: /start?rd=<foreign> logs in and lands on the application, never on the foreign URL."""
    r = browser.get(site.url("/outpost.goauthentik.io/start"), params={"rd": rd})
    assert r.status_code == 302, f"{r.status_code} {r.text[:200]}"
    carried = state_redirect(parse_qs(urlsplit(r.headers["location"]).query)["state"][0])
    assert carried == site.proxy.external_url, carried
    page = browser.follow_from(r)
    assert urlsplit(str(page.request.url)).path.startswith("/if/flow/"), browser.trail()
    from tests.e2e.support.stack import execute_flow

    final = execute_flow(browser, page, "alice", PASSWORD)
    assert final.status_code == 200 and final.headers.get("x-upstream") == "echo", browser.trail()
    assert str(final.request.url) in (site.proxy.external_url, site.proxy.external_url + "/"), browser.trail()
    assert not any("evil" in urlsplit(h.url).netloc for h in browser.hops), browser.trail()


def state_redirect(state: str) -> str:
    """The post-login URL the outpost's signed ``state`` carries (read without verifying: we only look)."""
    import jwt

    return jwt.decode(state, options={"verify_signature": False})["redirect"]


def test_revoking_the_core_session_ends_the_proxy_session(site, stack, browser, observe):
    """THREATS 12: an administrator deletes the user's login session at the core (SESSION_END)."""
    erin = stack.user(f"erin-{site.kind}", PASSWORD, [GROUP])
    signed_in(site, stack, browser, erin["username"])
    sessions = stack.api("GET", "/core/authenticated_sessions/", params={"user__username": erin["username"]})
    assert len(sessions["results"]) == 1, sessions
    stack.api("DELETE", f"/core/authenticated_sessions/{sessions['results'][0]['uuid']}/")
    r = until(lambda: (lambda r: r if r.status_code == 302 else None)(browser.get(site.url("/after-revoke"))),
              REVOKED_WITHIN, "login redirect after the core session was deleted", lambda: debug(site, stack, browser))
    assert r.headers.get("x-upstream") is None
    observe(site.kind, "real outpost: core session deleted -> client gets", [r.status_code])


def test_deactivated_user_is_refused(site, stack, browser):
    frank = stack.user(f"frank-{site.kind}", PASSWORD, [GROUP])
    signed_in(site, stack, browser, frank["username"])
    stack.api("PATCH", f"/core/users/{frank['pk']}/", json={"is_active": False})
    r = until(lambda: (lambda r: r if r.status_code in (302, 403) else None)(browser.get(site.url("/x"))),
              REVOKED_WITHIN, "refusal after deactivation", lambda: debug(site, stack, browser))
    assert r.headers.get("x-upstream") is None


@pytest.fixture(scope="module")
def other_app(stack: Stack) -> App:
    """A second application on the same outpost (no proxy in front: asked directly, as nginx would)."""
    return stack.add_app("other-app", "http://other.test:8000", group=GROUP)


def test_session_of_another_application_is_refused(site, stack, people, browser, other_app):
    """THREATS 8: alice signed in at this application; its cookie value is no session at another one, under
    either cookie name."""
    signed_in(site, stack, browser, "alice")
    mine = browser.cookie(site.app.cookie_name)
    for name in (other_app.cookie_name, site.app.cookie_name):
        r = httpx.get(stack.outpost_url + "/outpost.goauthentik.io/auth/nginx", headers={
            "Host": "other.test:8000", "X-Original-URL": "http://other.test:8000/", "Cookie": f"{name}={mine}"})
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text[:200]}"
        assert not r.headers.get("X-Authentik-Username")


def refused_credentials(site: Site) -> int:
    """What a client whose Authorization the outpost refused gets: the outpost's 401 through every proxy
    (nginx: configs/nginx/outpost-location.conf answers 401 instead of the login redirect when the request
    carried an Authorization header)."""
    return 401


def test_bearer_token_of_this_application_only(site, stack, people, browser, other_app, observe):
    """Header auth through the proxy: the access token the outpost issued for this application (the app sees
    it as X-authentik-jwt) works as ``Authorization: Bearer`` from a client without cookies; at another
    application it is refused (THREATS 8)."""
    token = single(signed_in(site, stack, browser, "alice").json(), "X-authentik-jwt")
    assert token
    with Browser() as api_client:
        r = api_client.get(site.url("/api/me"), headers={"Authorization": f"Bearer {token}",
                                                         "Accept": "application/json"})
        assert r.status_code == 200, f"{r.status_code} {r.text[:200]}\n{debug(site, stack, api_client)}"
        assert single(r.json(), "X-authentik-username") == "alice"
        observe(site.kind, "real outpost: Authorization at the app after Bearer header auth",
                header_values(r.json(), "Authorization"))
        bad = api_client.get(site.url("/api/me"), headers={"Authorization": f"Bearer {token}x"})
        assert bad.status_code == refused_credentials(site) and bad.headers.get("x-upstream") is None, \
            bad.status_code
        observe(site.kind, "real outpost: refused Bearer credentials (no Accept) -> client gets", bad.status_code)
    r = httpx.get(stack.outpost_url + "/outpost.goauthentik.io/auth/nginx", headers={
        "Host": "other.test:8000", "X-Original-URL": "http://other.test:8000/", "Authorization": f"Bearer {token}"})
    assert r.status_code == 401, f"{r.status_code} {r.text[:200]}"


def test_app_password_as_basic_auth(site, stack, people, browser):
    """``Authorization: Basic alice:<app password>`` (the token endpoint's client_credentials grant)."""
    created = stack.api("POST", "/core/tokens/", json={"identifier": f"alice-app-{site.kind}",
                                                       "intent": "app_password", "user": people["alice"]["pk"]})
    key = created.get("key") or stack.api("GET", f"/core/tokens/alice-app-{site.kind}/view_key/")["key"]
    r = browser.get(site.url("/api/basic"), auth=("alice", key))
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}\n{debug(site, stack, browser)}"
    assert single(r.json(), "X-authentik-username") == "alice"
    wrong = browser.get(site.url("/api/basic"), auth=("alice", key + "x"))
    assert wrong.status_code == refused_credentials(site) and wrong.headers.get("x-upstream") is None
    outsider = stack.api("POST", "/core/tokens/", json={"identifier": f"bob-app-{site.kind}",
                                                        "intent": "app_password", "user": people["bob"]["pk"]})
    key = outsider.get("key") or stack.api("GET", f"/core/tokens/bob-app-{site.kind}/view_key/")["key"]
    refused = browser.get(site.url("/api/basic"), auth=("bob", key))
    assert refused.status_code in (refused_credentials(site), 403) and refused.headers.get("x-upstream") is None, \
        refused.status_code


def test_unauthenticated_path_reaches_the_app_without_identity(site, browser, observe):
    """skip_path_regex through the proxy: no login for /public/..., no identity, and client-sent identity
    headers do not get through on that path either (THREATS 4, 5)."""
    r = browser.get(site.url("/public/page?x=1"), headers={"X-authentik-username": "mallory",
                                                          "X-Authentik-Uid": "0"})
    assert r.status_code == 200 and r.headers.get("x-upstream") == "echo", f"{r.status_code} {r.text[:200]}"
    seen = r.json()
    leaked = {n: header_values(seen, n) for n in IDENTITY if any(header_values(seen, n))}
    assert not leaked, f"{site.kind}: {leaked}"
    observe(site.kind, "real outpost: identity headers at the app on an unauthenticated path",
            sorted({k for k, v in seen["headers"] if k.lower().startswith("x-authentik")}, key=str.lower))


@pytest.mark.parametrize("path", ["/public/../private", "/public/%2e%2e/private", "/public/..%2fprivate",
                                  "/private?/public/x", "/PUBLIC/x"])
def test_unauthenticated_path_tricks_need_a_login(site, browser, path):
    r = browser.get(site.url(path))
    assert r.status_code == 302 and r.headers.get("x-upstream") is None, \
        f"{site.kind} {path}: {r.status_code} {r.text[:200]}"


def test_proxy_mode_on_the_embedded_outpost(stack, people, upstream, browser):
    """A proxy-mode application served by the embedded outpost: requests for its host on the core's port are
    proxied to the upstream (HTTP and websocket); the core keeps serving its own host on the same port."""
    from websockets.sync.client import connect as ws_connect

    app = stack.add_app("embedded-proxied", f"http://app.test:{stack.core.http_port}", mode="proxy",
                        internal_host=f"http://{upstream.address}", group=GROUP)
    result = login(browser, app.external_url + "/inside?q=1", "alice", PASSWORD)
    r = result.response
    assert r.status_code == 200 and r.headers.get("x-upstream") == "echo", f"{r.status_code}\n{browser.trail()}"
    assert single(r.json(), "X-authentik-username") == "alice"
    sock = socket.create_connection(("127.0.0.1", stack.core.http_port), timeout=10)
    with ws_connect(f"ws://app.test:{stack.core.http_port}/ws", sock=sock, open_timeout=10, close_timeout=10,
                    additional_headers={"Cookie": f"{app.cookie_name}={browser.cookie(app.cookie_name)}"}) as ws:
        assert header_values(json.loads(ws.recv(timeout=10)), "X-authentik-username") == ["alice"]
        ws.send("through the core's port")
        assert ws.recv(timeout=10) == "through the core's port"
    core_page = browser.get(stack.core_url + "/-/health/live/")
    assert core_page.status_code == 200 and core_page.headers.get("x-upstream") is None
    assert browser.get(stack.core_url + "/api/v3/root/config/").headers.get("x-upstream") is None
    anonymous = httpx.get(f"{stack.core.url}/inside", headers={"Host": f"app.test:{stack.core.http_port}"})
    assert anonymous.status_code == 302 and anonymous.headers.get("x-upstream") is None


def test_tampered_or_garbage_cookie_fails_closed(site, stack, people, browser):
    """THREATS 1: a modified, truncated or absurd cookie is no session and never an error that lets through."""
    signed_in(site, stack, browser, "alice")
    good = browser.cookie(site.app.cookie_name)
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    for value in (flipped, good.split(".")[0], good + "." + good, "x" * 5000, "%00%0d%0a", ""):
        with Browser() as other:
            other.cookies.set(site.app.cookie_name, value, domain="app.test")
            r = other.get(site.url("/private"))
            assert r.status_code in (302, 400, 431) and r.headers.get("x-upstream") is None, \
                f"{site.kind} {value[:20]!r}: {r.status_code} {r.text[:120]}"


def test_health_path_is_matched_on_path_alone(site, browser):
    """THREATS 9: the outpost's ping answers without login; a health-check User-Agent opens nothing else."""
    assert browser.get(site.url("/outpost.goauthentik.io/ping")).status_code == 204
    r = browser.get(site.url("/private"), headers={"User-Agent": "goauthentik.io/outpost/healthcheck"})
    assert r.status_code == 302 and r.headers.get("x-upstream") is None
