"""THREATS.md 1-10 performed against the real stack: ``ak server`` + a standalone ``ak outpost proxy`` behind
real nginx, Traefik and Caddy (the configs/ files), the echo upstream behind them, and a proxy-mode app on
the outpost itself. The unit-level versions live in tests/outpost/proxy/test_threats.py; here each attack
goes through the real proxies with byte-exact requests (tests/e2e/support/live.py ``raw``).

Every attack must fail closed: the echo upstream never answers (or answers without an identity / with only
the legitimate user's), and the status is 3xx-to-login or 4xx/5xx. Applications:

* ``staff-<kind>`` on ``<kind>.app.test`` behind each proxy, bound to group ``staff``, with
  ``skip_path_regex`` ``/public/.*`` (an unauthenticated path);
* ``crew`` on ``crew.app.test`` behind its own nginx, bound to group ``crew`` (another application: for
  cross-application and host-confusion attacks); ``proxied`` in proxy mode on the outpost's own port.

alice is in staff and crew, bob only in crew. The core-down and outpost-down tests come last (file order).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import jwt
import pytest

from protocols.forward import judged_path
from tests.e2e.support.browser import Browser
from tests.e2e.support.live import (
    Site,
    add_site,
    cookie_header,
    fails_closed,
    identity_seen,
    raw,
    reached,
    sign_in,
)
from tests.e2e.support.proxies import KINDS
from tests.e2e.support.stack import App, Stack, execute_flow, login, until
from tests.e2e.support.upstream import header_values

pytestmark = pytest.mark.e2e

STAFF, CREW, PROXIED = "staff", "crew", "proxied"
PASSWORD = "Correct-Horse-threats-1!"  # noqa: S105 - a test password
SKIP = "/public/.*"
CHANGED_WITHIN = 5.0  # bound for a group change to reach the outpost (normally well under 1 s)


@pytest.fixture(scope="module")
def stack(stack_factory) -> Stack:
    return stack_factory(standalone=True)


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, dict]:
    """Every user, created BEFORE the applications: the outpost decides per request from its configuration
    snapshot, which lists a new user only after the next refresh (a login within ~0.3 s of creating the user
    would get 403 meanwhile; see the report). add_app waits for a snapshot made after these users."""
    people = {"alice": stack.user("alice", PASSWORD, [STAFF, CREW], name="Alice Live"),
              "bob": stack.user("bob", PASSWORD, [CREW], name="Bob Crew")}
    for kind in KINDS:
        people[f"carol-{kind}"] = stack.user(f"carol-{kind}", PASSWORD, [STAFF])
    return people


@pytest.fixture(scope="module")
def sites(stack: Stack, people, proxy_factory, upstream) -> Iterator[dict[str, Site]]:
    sites = {kind: add_site(stack, proxy_factory, upstream, kind, f"staff-{kind}", host=f"{kind}.app.test",
                            group=STAFF, skip_path_regex=SKIP) for kind in KINDS}
    sites["crew"] = add_site(stack, proxy_factory, upstream, "nginx", "crew", host="crew.app.test", group=CREW)
    yield sites
    for site in sites.values():
        site.proxy.stop()


@pytest.fixture(scope="module")
def proxied(stack: Stack, sites, upstream) -> App:
    assert stack.standalone is not None
    return stack.add_app(PROXIED, f"http://proxied.app.test:{stack.standalone.port}", mode="proxy",
                         internal_host=f"http://{upstream.address}", group=STAFF, skip_path_regex=SKIP)


@pytest.fixture(scope="module")
def cookies(stack, sites, people) -> dict[str, str]:
    """Session cookies: alice at every staff site ("nginx", "traefik", "caddy"), bob at the crew site."""
    jar = {}
    for kind in KINDS:
        with Browser() as browser:
            jar[kind] = sign_in(stack, sites[kind], browser, "alice", PASSWORD)
    with Browser() as browser:
        jar["crew"] = sign_in(stack, sites["crew"], browser, "bob", PASSWORD)
    return jar


def staff(sites) -> list[Site]:
    return [sites[k] for k in KINDS]


def closed(r, what: str, allowed_user: str | None = None) -> None:
    problem = fails_closed(r, allowed_user=allowed_user)
    assert problem is None, f"{what}: {problem}"


def state_redirect(location: str) -> str:
    """The post-login URL the outpost's signed ``state`` carries (read without verifying: we only look)."""
    state = parse_qs(urlsplit(location).query)["state"][0]
    return jwt.decode(state, options={"verify_signature": False})["redirect"]


# --- 2. spoofed target ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_spoofed_target_headers_gain_nothing(kind, sites, cookies):
    """The client's own X-Original-URI/-URL (nginx) and X-Forwarded-* (Traefik, Caddy) pointing at an
    unauthenticated path, at the outpost's paths or at another application's host: never the upstream."""
    site, crew = sites[kind], sites["crew"]
    bob = cookie_header(crew.app, cookies["crew"])
    attacks = {
        "X-Original-URI public": [("X-Original-URI", "/public/x")],
        "X-Original-URL public": [("X-Original-URL", site.url("/public/x"))],
        "X-Original-URL other app": [("X-Original-URL", crew.url("/")), bob],
        "X-Forwarded-Uri public": [("X-Forwarded-Uri", "/public/x")],
        "X-Forwarded-Uri outpost ping": [("X-Forwarded-Uri", "/outpost.goauthentik.io/ping")],
        "X-Forwarded-Uri outpost start": [("X-Forwarded-Uri", "/outpost.goauthentik.io/start")],
        "X-Forwarded-Host other app": [("X-Forwarded-Host", crew.proxy.host_header), bob],
        "X-Forwarded-Host+Uri other app": [("X-Forwarded-Host", crew.proxy.host_header),
                                           ("X-Forwarded-Uri", "/"), ("X-Forwarded-Proto", "http"), bob],
        "X-Forwarded-Method OPTIONS": [("X-Forwarded-Method", "OPTIONS"), ("X-Original-Method", "OPTIONS")],
    }
    for what, headers in attacks.items():
        r = site.get("/private", headers)
        closed(r, f"{kind}: {what}")
        assert not reached(r), f"{kind}: {what}: the upstream answered {r}"


@pytest.mark.parametrize("kind", KINDS)
def test_another_applications_host_header_gains_nothing(kind, sites, cookies, observe):
    """Host confusion: bob (allowed at crew only) sends crew's Host and cookie to a staff proxy's port. Nothing
    may turn bob's crew session into access to the staff app's upstream. (Caddy answers an unknown site with
    an empty 200 of its own: not the upstream, no identity.)"""
    site, crew = sites[kind], sites["crew"]
    answers = {}
    for host in (crew.proxy.host_header, crew.proxy.host_header.upper(), "crew.app.test"):
        r = raw(site.proxy.port, "GET", "/private", [("Host", host), cookie_header(crew.app, cookies["crew"])])
        answers[host.split(":")[0]] = r.status
        assert not reached(r), f"{kind}: Host {host}: {r} identity {identity_seen(r)['X-authentik-username']}"
        assert r.status >= 300 or r.body == b"", f"{kind}: Host {host}: {r}"
    observe(kind, "live: another app's Host at this proxy's port", answers)


def test_outpost_path_through_the_proxies_gives_no_upstream_access(sites, cookies):
    """/outpost.goauthentik.io/* on the app host goes to the outpost itself, never with identity to the
    upstream, whatever forwarded headers the client adds; dot segments back out of it are not a way in."""
    for site in staff(sites):
        for target in ("/outpost.goauthentik.io/auth/nginx", "/outpost.goauthentik.io/auth/traefik",
                       "/outpost.goauthentik.io/auth/caddy", "/outpost.goauthentik.io/../private",
                       "/outpost.goauthentik.io/ping/../../private", "/outpost.goauthentik.io/%2e%2e/private"):
            r = site.get(target, [("X-Original-URL", site.url("/public/x")), ("X-Forwarded-Uri", "/public/x"),
                                  ("X-Forwarded-Host", site.proxy.host_header), ("X-Forwarded-Proto", "http")])
            assert not reached(r), f"{site.kind} {target}: the upstream answered {r}"


# --- 3. unparsable client address --------------------------------------------------------------------------

BAD_XFF = ["garbage", "999.1.1.1", "1.2.3.4, ::zz", "127.0.0.1\tx", "", ",,,", "10.0.0.1, 127.0.0.1, nonsense",
           "[::1]:80", "1" * 3000]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_forwarded_for_is_no_way_in(kind, stack, sites, people):
    """Anonymous requests with garbage X-Forwarded-For get the login; a signed-in user removed from the group
    still gets 403 with it (never a skipped check)."""
    site = sites[kind]
    for value in BAD_XFF:
        r = site.get("/private", [("X-Forwarded-For", value), ("X-Real-IP", value[:100] or "x")])
        closed(r, f"{kind} XFF {value[:40]!r}")
        assert not reached(r), f"{kind} XFF {value[:40]!r}: {r}"
    carol = people[f"carol-{kind}"]
    with Browser() as browser:
        value = sign_in(stack, site, browser, carol["username"], PASSWORD)
    stack.set_groups(carol, [])
    jar = cookie_header(site.app, value)
    until(lambda: site.get("/private", [jar]).status == 403, CHANGED_WITHIN, "403 after leaving the group")
    for xff in BAD_XFF:
        r = site.get("/private", [jar, ("X-Forwarded-For", xff)])
        assert r.status == 403 and not reached(r), f"{kind} XFF {xff[:40]!r}: {r}"


# --- 4. path and host confusion ----------------------------------------------------------------------------

CONFUSED = ["/public/../private", "/public/%2e%2e/private", "/public/%2E%2E/private", "/public/..%2fprivate",
            "/public/%2e%2e%2fprivate", "//public/../private", "/public//../private", "/public/./../private",
            "/%70ublic/../private", "/public/%252e%252e/private", "/private?/public/x", "/private?x=/public/",
            "/private;/public/x", "/private/..;/public/x", "/PUBLIC/x", "/public", "/xpublic/x",
            "/private%3f/public/x", "/private%23/public/x"]


@pytest.mark.parametrize("kind", KINDS)
def test_skip_path_confusion_reaches_nothing(kind, sites, observe):
    """skip_path_regex ``/public/.*`` matches the normalised path only: every confusing spelling of a
    private path gets the login (or a proxy's 400), never the upstream."""
    site = sites[kind]
    answers = {}
    for target in CONFUSED:
        r = site.get(target)
        answers[target] = r.status
        assert not reached(r), f"{kind} {target}: the upstream answered without login: {r}"
        assert r.status >= 300, f"{kind} {target}: {r}"
    observe(kind, "live: confusing skip-path targets answered", answers)


# Issue 8 item 6: spellings that read as /public/... to the skip rule's decoder while the upstream (which
# gets the raw path) or a Java server reads a private path. Browsers never send these.
PUBLIC_CONFUSED = ["/admin/..%2Fpublic/x", "/admin/..%2fpublic/x", "/admin/%2e%2e%2Fpublic/x",
                   "/admin%2F..%2Fpublic/x", "/admin/%2e%2e/public/x", "/admin/../public/x", "/public/..;/admin/x",
                   "/public/..%3B/admin/x", "/public/x;jsessionid=1", "/public%2F..%2Fadmin", "/public/x%5C..%5Cadmin",
                   "//public/x", "/public//x", "/public/./x"]


def login_or_refusal(r) -> bool:
    """A login (302 into it; nginx: its error_page's 302 after our 401; 401 for API clients) or a proxy's own
    400 refusing the request line. The upstream may answer only when the proxy itself normalised the path into
    a plainly public one before asking the outpost and the upstream alike (Traefik resolves ``%2e%2e``), so
    what the upstream received is what was judged."""
    if reached(r):
        received = r.json()["raw_path"]
        return received.startswith("/public/") and received == judged_path(received)
    return r.status in (302, 401) or r.status == 400 and not r.body.startswith(b"{")


@pytest.mark.parametrize("kind", KINDS)
def test_paths_that_read_as_public_need_a_login(kind, sites, observe):
    """skip_path_regex ``/public/.*``: a path that is public only once decoded or resolved, or to a Java
    server, gets the login -- never the upstream (which would see the raw path, e.g. ``/admin/..%2Fpublic/x``:
    a router on the raw path serves /admin)."""
    site = sites[kind]
    answers = {}
    for target in PUBLIC_CONFUSED:
        r = site.get(target)
        answers[target] = r.status if not reached(r) else f"upstream saw {r.json()['raw_path']}"
        assert login_or_refusal(r), f"{kind} {target}: {r}"
    observe(kind, "live: paths that read as public answered", answers)


def test_proxy_mode_paths_that_read_as_public_need_a_login(stack, proxied):
    assert stack.standalone is not None
    host = urlsplit(proxied.external_url).netloc
    for target in PUBLIC_CONFUSED:
        r = raw(stack.standalone.port, "GET", target, [("Host", host)])
        assert r.status == 302 and not reached(r), f"proxy mode {target}: {r}"
        assert "/outpost.goauthentik.io/start" in (r.header("location") or ""), f"proxy mode {target}: {r}"
    for target in ("/public/x", "/%70ublic/x", "/public/x?q=%2F..%2F"):  # the control: served, byte for byte
        r = raw(stack.standalone.port, "GET", target, [("Host", host)])
        assert r.status == 200 and reached(r) and r.json()["raw_path"] == target, f"proxy mode {target}: {r}"


@pytest.mark.parametrize("kind", KINDS)
def test_public_path_is_served_without_identity(kind, sites):
    """The control: the unauthenticated path really is served, and a client's identity headers are removed
    there too."""
    site = sites[kind]
    for target in ("/public/page", "/%70ublic/page"):
        r = site.get(target, [("X-authentik-username", "mallory"), ("X-Authentik-Uid", "0")])
        assert r.status == 200 and reached(r), f"{kind} {target}: {r}"
        seen = identity_seen(r)  # Traefik/Caddy copy the outpost's empty identity headers; nginx sends none
        assert set(seen["X-authentik-username"]) <= {""} and set(seen["X-authentik-uid"]) <= {""}, \
            f"{kind} {target}: {seen}"


def test_host_compared_case_insensitively(sites, cookies):
    """The same application whatever the case of the Host: alice's cookie works, an anonymous request gets
    the login (no "unknown host" pass, no other application)."""
    for site in staff(sites):
        upper = site.proxy.host_header.upper()
        r = raw(site.proxy.port, "GET", "/private", [("Host", upper)])
        closed(r, f"{site.kind} anonymous Host {upper}")
        assert not reached(r)
        r = raw(site.proxy.port, "GET", "/private", [("Host", upper), cookie_header(site.app, cookies[site.kind])])
        closed(r, f"{site.kind} alice Host {upper}", allowed_user="alice")


# --- 5. header smuggling -----------------------------------------------------------------------------------

SPOOFS = [("X-authentik-username", "mallory"), ("x-authentik-username", "mallory2"),
          ("X-AUTHENTIK-USERNAME", "mallory3"), ("X-Authentik-Groups", "admins"), ("X-authentik-uid", "0"),
          ("X_AUTHENTIK_USERNAME", "mallory4"), ("X-Authentik_Username", "mallory5"),
          ("x_authentik_groups", "admins"), ("X-authentik-meta-app", "other")]


def authentik_headers(seen: dict) -> list[tuple[str, str]]:
    """Every header the upstream got whose name reads as an authentik identity header in any spelling."""
    return [(k, v) for k, v in seen["headers"] if k.lower().replace("_", "-").startswith("x-authentik-")]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_auth_identity_cannot_be_smuggled(kind, sites, cookies, people, observe):
    """Through each proxy, signed in as alice: the client's identity headers (every spelling) and a
    ``Connection`` naming ours never make the upstream see another identity in the hyphenated headers."""
    site = sites[kind]
    jar = cookie_header(site.app, cookies[kind])
    for connection in (None, "close, X-authentik-username, X-authentik-uid, X-authentik-groups"):
        headers = [jar, *SPOOFS] + ([("Connection", connection)] if connection else [])
        r = site.get("/private", headers)
        assert r.status == 200 and reached(r), f"{kind}: {r}"
        seen = r.json()
        # nginx/Traefik/Caddy spellings differ; what the app reads as X-authentik-* must be alice's or nothing
        for name in ("X-authentik-username", "X-authentik-groups", "X-authentik-uid", "X-authentik-meta-app"):
            values = header_values(seen, name)
            assert all(v not in ("mallory", "mallory2", "mallory3", "admins", "0", "other") for v in values), \
                f"{kind} Connection={connection!r}: {name} = {values}"
        assert header_values(seen, "X-authentik-username") in (["alice"], []), seen["headers"]
        if kind != "traefik":  # Traefik cannot delete headers by pattern: configs/README.md says what to do
            underscored = [k for k, _ in authentik_headers(seen) if "_" in k]
            assert not underscored, f"{kind}: underscore spellings reached the upstream: {underscored}"
        observe(kind, f"live: smuggling, identity-like headers at the upstream (Connection={bool(connection)})",
                sorted({k for k, _ in authentik_headers(seen)}))
    # anonymous with the spoofs: the login, not the upstream
    r = site.get("/private", SPOOFS)
    assert not reached(r), f"{kind} anonymous spoof: {r}"


def test_proxy_mode_identity_cannot_be_smuggled(stack, proxied, people):
    """Proxy mode (the outpost is the reverse proxy): every spelling is removed, ours are set, and a
    ``Connection`` header naming them removes nothing of ours; anonymous spoofs get the login; on an
    unauthenticated path the upstream sees no authentik header at all."""
    assert stack.standalone is not None
    with Browser() as browser:
        result = login(browser, proxied.external_url + "/", "alice", PASSWORD)
        assert result.response.status_code == 200 and reached(result.response), browser.trail()
        value = browser.cookie(proxied.cookie_name)
    host = ("Host", urlsplit(proxied.external_url).netloc)
    port = stack.standalone.port
    conn = ("Connection", "keep-alive, X-authentik-username, X-authentik-uid, X-authentik-groups, X-authentik-jwt")
    r = raw(port, "GET", "/private", [host, cookie_header(proxied, value), *SPOOFS, conn])
    assert r.status == 200 and reached(r), str(r)
    seen = r.json()
    found = authentik_headers(seen)
    assert header_values(seen, "X-authentik-username") == ["alice"], found
    assert header_values(seen, "X-authentik-uid") == [people["alice"]["uid"]], found
    assert header_values(seen, "X-authentik-groups") == [f"{STAFF}|{CREW}"] or \
        sorted(header_values(seen, "X-authentik-groups")[0].split("|")) == sorted([STAFF, CREW]), found
    assert not [k for k, _ in found if "_" in k], f"underscore spellings reached the upstream: {found}"
    assert all(v not in ("mallory", "mallory2", "mallory3", "mallory4", "mallory5", "admins", "0", "other")
               for _, v in found), found
    r = raw(port, "GET", "/private", [host, *SPOOFS])
    assert not reached(r) and r.status in (302, 401), str(r)
    r = raw(port, "GET", "/public/x", [host, *SPOOFS, conn])
    assert r.status == 200 and reached(r), str(r)
    assert authentik_headers(r.json()) == [], authentik_headers(r.json())


# --- 6. open redirect --------------------------------------------------------------------------------------


def foreign_rds(site: Site) -> list[str]:
    own = site.proxy.host_header
    return [f"http://{own}@evil.test/", f"http://evil.test\\@{own}/", f"http://{own}%40evil.test/",
            f"http://{own}.evil.test/", f"http://{own}:80@evil.test/", f"http://evil.test#@{own}/",
            f"http://evil.test?@{own}/", "/\t/evil.test", "/%09/evil.test", "\t//evil.test", " //evil.test",
            "//evil.test", "///evil.test", "/\\evil.test", "\\\\evil.test", "https:evil.test", "http:/\\evil.test",
            "http:evil.test", "%2F%2Fevil.test", "java\tscript:alert(1)", "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>", "http://EVIL.test/", f"http://{own}\t.evil.test/",
            f"http://{own} @evil.test/", "http://evil.test\n/"]


@pytest.mark.parametrize("kind", KINDS)
def test_start_never_carries_a_foreign_redirect(kind, sites):
    """/outpost.goauthentik.io/start?rd=<foreign> through each proxy: the signed state's post-login URL stays on
    the application's host (rd sent encoded, and raw as nginx's error_page sends it)."""
    site = sites[kind]
    for rd in foreign_rds(site):
        targets = [f"/outpost.goauthentik.io/start?rd={quote(rd, safe='')}"]
        if rd.startswith("http") and all(c not in rd for c in " \t\n\\"):
            targets.append(f"/outpost.goauthentik.io/start?rd={rd}")  # unencoded (http.client refuses CTLs)
        for target in targets:
            r = site.get(target)
            if r.status != 302:  # a proxy refusing the request line itself is fine
                assert r.status >= 400 and not reached(r), f"{kind} {target}: {r}"
                continue
            location = r.header("location") or ""
            assert "evil" not in urlsplit(location).netloc.lower(), f"{kind} {target}: Location {location}"
            carried = state_redirect(location)
            parts = urlsplit(carried)
            assert parts.scheme == "http" and parts.netloc == site.proxy.host_header and "@" not in parts.netloc, \
                f"{kind} rd={rd!r}: state carries {carried!r}"


def test_userinfo_rd_login_lands_on_the_application(stack, sites, people):
    """A full login from /start?rd=http://<app>@evil.test/ through nginx ends on the application."""
    site = sites["nginx"]
    with Browser() as browser:
        first = browser.get(site.url("/outpost.goauthentik.io/start"),
                            params={"rd": f"http://{site.proxy.host_header}@evil.test/"})
        page = browser.follow_from(first)
        assert urlsplit(str(page.request.url)).path.startswith("/if/flow/"), browser.trail()
        final = execute_flow(browser, page, "alice", PASSWORD)
        assert final.status_code == 200 and reached(final), browser.trail()
        assert not any("evil" in urlsplit(h.url).netloc for h in browser.hops), browser.trail()
        assert urlsplit(str(final.request.url)).netloc == site.proxy.host_header


# --- 1 / 7 / 8. cookies ------------------------------------------------------------------------------------


def bad_cookies(value: str, other: str) -> dict[str, str]:
    session_id, _, mac = value.partition(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    return {"mac flipped": f"{session_id}.{flipped}", "truncated mac": value[:-5], "no mac": session_id,
            "id only changed": ("A" if session_id[0] != "A" else "B") + value[1:],
            "other app's value": other, "swapped halves": f"{mac}.{session_id}", "empty": "",
            "oversized 300": value + "x" * (300 - len(value)), "oversized 6000": "a" * 6000,
            "oversized 20000": "a" * 20000, "dots": "." * 100, "quoted mac only": f'{session_id}."{mac}"',
            "control chars": session_id + "%00." + mac, "two dots": f"{session_id}.{mac}.{mac}"}


@pytest.mark.parametrize("kind", KINDS)
def test_tampered_cookies_fail_closed(kind, sites, cookies):
    site = sites[kind]
    other = cookies["nginx" if kind != "nginx" else "traefik"]  # alice's session at another staff app
    for what, value in bad_cookies(cookies[kind], other).items():
        for extra in ([], [("Accept", "application/json")]):
            r = site.get("/private", [cookie_header(site.app, value), *extra])
            closed(r, f"{kind} cookie {what}")
            assert not reached(r), f"{kind} cookie {what}: {r}"
    # the other applications' cookies under their own names (a browser sends all of app.test's): nothing here
    jar = "; ".join(f"{sites[k].app.cookie_name}={cookies[k]}" for k in (*KINDS, "crew") if k != kind)
    r = site.get("/private", [("Cookie", jar)])
    assert not reached(r), f"{kind}: {r}"
    # alice's own value under this app's name works (the control for "other app's value")
    r = site.get("/private", [cookie_header(site.app, cookies[kind])])
    assert r.status == 200 and identity_seen(r)["X-authentik-username"] == ["alice"], str(r)


def test_prelogin_cookie_is_no_session(sites):
    for site in staff(sites):
        with Browser() as browser:
            browser.follow(site.url("/private"))  # to the login page: the signed pre-login id is set
            pre = browser.cookie(site.app.cookie_name)
        assert pre, site.kind
        r = site.get("/private", [cookie_header(site.app, pre)])
        assert not reached(r) and r.status in (302, 401), f"{site.kind}: {r}"


def access_token(site: Site, cookie: str) -> str:
    r = site.get("/private", [cookie_header(site.app, cookie)])
    assert r.status == 200 and reached(r), str(r)
    token = identity_seen(r)["X-authentik-jwt"]
    assert len(token) == 1, identity_seen(r)
    return token[0]


def test_bearer_token_of_one_provider_is_refused_by_another(sites, cookies):
    """THREATS 8 (authentik CVE-2024-47077): alice's access token for staff-nginx (what the upstream gets as
    X-authentik-jwt) is accepted there as a Bearer token, and refused by every other provider -- also
    crew's, where alice is allowed."""
    nginx = sites["nginx"]
    token = access_token(nginx, cookies["nginx"])
    bearer = ("Authorization", f"Bearer {token}")
    r = nginx.get("/private", [bearer])
    assert r.status == 200 and identity_seen(r)["X-authentik-username"] == ["alice"], f"the control: {r}"
    for key in ("traefik", "caddy", "crew"):
        for header in (bearer, ("Authorization", "Basic " + base64.b64encode(
                f"goauthentik.io/token:{token}".encode()).decode())):
            r = sites[key].get("/private", [header])  # nginx's error_page turns the 401 into the login
            assert not reached(r) and r.status in ((302, 401) if sites[key].kind == "nginx" else (401,)), \
                f"{key} {header[1][:12]}: {r}"
    bob_token = access_token(sites["crew"], cookies["crew"])
    for site in staff(sites):
        r = site.get("/private", [("Authorization", f"Bearer {bob_token}")])
        assert not reached(r) and r.status == 401, f"{site.kind}: bob's crew token: {r}"


# --- 9. health and metrics ---------------------------------------------------------------------------------

PROBES = ["kube-probe/1.29", "GoogleHC/1.0", "ELB-HealthChecker/2.0", "Consul Health Check", "Traefik",
          "goauthentik.io/outpost/healthcheck"]
HEALTHISH = ["/-/health/live/", "/-/health/ready/", "/healthz", "/ping", "/metrics", "/private",
             "/private?/-/health/live/", "/-/health/live/../../private", "/outpost.goauthentik.io/metrics"]


@pytest.mark.parametrize("kind", KINDS)
def test_health_matches_path_only_and_no_metrics_through_the_proxy(kind, sites):
    site = sites[kind]
    for path in HEALTHISH:
        for agent in PROBES:
            r = site.get(path, [("User-Agent", agent)])
            assert not reached(r), f"{kind} {path} UA {agent}: the upstream answered without login: {r}"
            assert b"authentik_outpost_connection" not in r.body, f"{kind} {path}: metrics served"
            assert r.status >= 300 or r.status == 204 and path.endswith("/ping"), f"{kind} {path}: {r}"
    ping = site.get("/outpost.goauthentik.io/ping")
    assert ping.status == 204 and not reached(ping), f"{kind} ping: {ping}"


def test_metrics_only_on_the_metrics_listener(stack, proxied):
    assert stack.standalone is not None
    for host in (f"127.0.0.1:{stack.standalone.port}", urlsplit(proxied.external_url).netloc):
        for path in ("/metrics", "/metrics/", "/outpost.goauthentik.io/metrics"):
            r = raw(stack.standalone.port, "GET", path, [("Host", host), ("User-Agent", "Prometheus/2.0")])
            assert b"authentik_outpost_connection" not in r.body and not (r.status == 200 and not reached(r)), \
                f"{host}{path}: {r}"
    r = httpx.get(f"http://127.0.0.1:{stack.standalone.metrics_port}/metrics", timeout=10)
    assert r.status_code == 200 and "authentik_outpost_connection" in r.text  # the control


# --- 10. XHR and preflight ---------------------------------------------------------------------------------

API_CLIENTS = {"accept json": [("Accept", "application/json")],
               "accept json, */*": [("Accept", "application/json, */*;q=0.5")],
               "x-requested-with": [("X-Requested-With", "XMLHttpRequest")]}
# Also API clients for the outpost (protocols.forward.classify); nginx's error_page recipe only knows the ones
# above, so through nginx these still get the login redirect (fail closed, but not the 401): proposal #2.
MORE_API_CLIENTS = {"accept vnd+json": [("Accept", "application/vnd.api+json")],
                    "sec-fetch-mode cors": [("Sec-Fetch-Mode", "cors"), ("Accept", "*/*")]}


@pytest.mark.parametrize("kind", KINDS)
def test_xhr_and_preflight_get_401(kind, sites, cookies, observe):
    site = sites[kind]
    answers = {}
    for what, headers in (API_CLIENTS | MORE_API_CLIENTS).items():
        expected = (401,)
        for label, extra in (("", []), (" + bad cookie", [cookie_header(site.app, cookies[kind][:-3] + "zzz")])):
            r = site.get("/api/data", [*headers, *extra])
            answers[what + label] = r.status
            assert r.status in expected and not reached(r), f"{kind} {what}{label}: {r}"
    r = site.get("/api/data", [("Origin", "http://other.test"), ("Access-Control-Request-Method", "POST"),
                               ("Access-Control-Request-Headers", "content-type")], method="OPTIONS")
    assert r.status == 401 and not reached(r), f"{kind} preflight: {r}"
    r = site.get("/page", [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")])  # a browser: the login
    assert r.status == 302 and not reached(r), f"{kind} navigation: {r}"
    observe(kind, "live: API-like anonymous requests answered", answers)


# --- 1. fail closed: unknown host, outpost down, core down (these last: they stop processes) ---------------


def test_unknown_host_fails_closed(stack, proxy_factory, upstream):
    """A proxy configured for a host no application has: the outpost's 400 becomes a proxy error, never the
    upstream."""
    proxy = proxy_factory("nginx", outpost=stack.outpost_address, upstream=upstream.address,
                          app_host="nobody.app.test")
    try:
        for target in ("/", "/public/x", "/private"):
            r = raw(proxy.port, "GET", target, [("Host", proxy.host_header)])
            assert not reached(r) and r.status >= 400, f"{target}: {r}"
    finally:
        proxy.stop()


def test_outpost_down_fails_closed(stack, sites, cookies):
    assert stack.standalone is not None
    stack.standalone.stop()
    try:
        for site in staff(sites):
            for headers in ([], [cookie_header(site.app, cookies[site.kind])]):
                for target in ("/private", "/public/x"):
                    r = site.get(target, headers)
                    assert r.status >= 500 and not reached(r), f"{site.kind} {target} outpost down: {r}"
    finally:
        stack.standalone.start()
        stack.standalone.wait_connected()
    for site in staff(sites):
        until(lambda s=site: stack.served(s.app.external_url), 30, f"{site.kind} served again")


def test_core_down_never_2xx_without_identity(stack, sites, cookies, proxied):
    """The core stops; the standalone outpost keeps serving its last configuration. Signed-in sessions may
    go on (with their identity); nothing else gets a 2xx without identity: anonymous -> login redirect or
    401, a callback -> an error, header credentials the outpost cannot check -> 502, not the upstream."""
    assert stack.standalone is not None
    token = access_token(sites["nginx"], cookies["nginx"])
    stack.core.terminate()
    try:
        until(lambda: not stack.standalone.ready().get("core_connected"), 15, "the outpost notices the core left")
        for site in staff(sites):
            jar = cookie_header(site.app, cookies[site.kind])
            attempts = {
                "anonymous": site.get("/private"),
                "anonymous xhr": site.get("/private", [("Accept", "application/json")]),
                "signed in": site.get("/private", [jar]),
                "unknown bearer": site.get("/private", [("Authorization", "Bearer " + "x" * 40)]),
                "basic app password": site.get("/private", [("Authorization", "Basic YWxpY2U6bm90LWl0")]),
                "callback": site.get("/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code=x&state=y"),
                "start": site.get("/outpost.goauthentik.io/start?rd=/x"),
                "tampered": site.get("/private", [cookie_header(site.app, cookies[site.kind][:-2] + "AA")]),
            }
            if site.kind != "nginx":  # alice's token for staff-nginx is no identity at other providers
                attempts["foreign bearer"] = site.get("/private", [("Authorization", f"Bearer {token}")])
            for what, r in attempts.items():
                closed(r, f"{site.kind} core down, {what}", allowed_user="alice" if what == "signed in" else None)
                if what != "signed in":
                    assert not reached(r), f"{site.kind} core down, {what}: {r}"
            # the outpost's 502 (identity provider unreachable); nginx's auth_request reports any such as 500
            assert attempts["unknown bearer"].status in (500, 502), str(attempts["unknown bearer"])
        r = raw(stack.standalone.port, "GET", "/private", [("Host", urlsplit(proxied.external_url).netloc)])
        assert not reached(r) and r.status in (302, 401), f"proxy mode, core down: {r}"
    finally:
        stack.core.launch()
        stack.core.wait()
    until(lambda: (stack.standalone.ready() or {}).get("core_connected"), 30, "the outpost reconnects",
          stack.logs)
    r = sites["nginx"].get("/private", [cookie_header(sites["nginx"].app, cookies["nginx"])])
    assert r.status == 200 and identity_seen(r)["X-authentik-username"] == ["alice"], str(r)
