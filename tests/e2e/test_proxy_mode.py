"""Proxy mode and the standalone outpost, with the REAL core: ``ak outpost proxy`` reverse-proxies to the
echo upstream (HTTP and its websocket ``/ws``) after a login through the flow executor API; the same
standalone outpost also does forward auth behind a real proxy.

One ``ak server`` and one ``ak outpost proxy`` for the module (tests/e2e/support/stack.py).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect as ws_connect

from tests.e2e.support.browser import Browser
from tests.e2e.support.live import raw, reached
from tests.e2e.support.stack import App, Stack, login, until
from tests.e2e.support.upstream import header_values

pytestmark = pytest.mark.e2e

GROUP = "proxied"
PASSWORD = "Correct-Horse-proxy-5!"  # noqa: S105 - a test password
TIMEOUT = 10.0
REVOKED_WITHIN = 5.0
UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


@pytest.fixture(scope="module")
def stack(stack_factory) -> Stack:
    return stack_factory(standalone=True)


@pytest.fixture(scope="module")
def proxied(stack: Stack, upstream) -> App:
    """Proxy mode: the outpost itself is the app's front door at http://app.test:<outpost port>."""
    assert stack.standalone is not None
    return stack.add_app("proxied", f"http://app.test:{stack.standalone.port}", mode="proxy",
                         internal_host=f"http://{upstream.address}", group=GROUP)


@pytest.fixture(scope="module")
def users(stack: Stack) -> dict[str, dict]:
    return {"gina": stack.user("gina", PASSWORD, [GROUP], name="Gina Proxy"),
            "hank": stack.user("hank", PASSWORD, [])}


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


def echo_of(response) -> dict:
    assert response.status_code == 200 and response.headers.get("x-upstream") == "echo", \
        f"{response.status_code} {response.text[:300]}"
    return response.json()


def test_anonymous_is_sent_to_start_then_log_in(proxied, browser):
    r = browser.get(proxied.external_url + "/page?a=1")
    assert r.status_code == 302 and r.headers.get("x-upstream") is None, r.text[:200]
    xhr = browser.get(proxied.external_url + "/page", headers={"Accept": "application/json"})
    assert xhr.status_code == 401


def test_login_and_identity_headers_in_proxy_mode(stack, proxied, users, browser):
    result = login(browser, proxied.external_url + "/page?a=1", "gina", PASSWORD)
    seen = echo_of(result.response)
    # authentik's redirectToStart keeps the path only (reference §2.4), so the query is not restored
    assert seen["path"] == "/page"
    assert header_values(seen, "X-authentik-username") == ["gina"]
    assert header_values(seen, "X-authentik-uid") == [users["gina"]["uid"]]
    assert header_values(seen, "X-authentik-groups") == [GROUP]
    # client-sent copies in any spelling are stripped before ours are added (THREATS 5)
    r = browser.get(proxied.external_url + "/again", headers={
        "X-Authentik-Username": "mallory", "X_AUTHENTIK_USERNAME": "mallory", "Connection": "X-authentik-uid"})
    seen = echo_of(r)
    assert header_values(seen, "X-authentik-username") == ["gina"]
    assert header_values(seen, "X-authentik-uid") == [users["gina"]["uid"]]
    assert not [k for k, _ in seen["headers"] if "_" in k]
    # a POST body streams through
    r = browser.post(proxied.external_url + "/submit", content=b"x" * 100_000)
    assert echo_of(r)["method"] == "POST"


def test_outsider_is_refused_in_proxy_mode(proxied, users, browser):
    result = login(browser, proxied.external_url + "/", "hank", PASSWORD)
    assert result.response.status_code == 403, f"{result.response.status_code}\n{browser.trail()}"
    assert browser.get(proxied.external_url + "/").status_code == 302


def _ws(app: App, port: int, cookie: str | None):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    headers = {"Cookie": f"{app.cookie_name}={cookie}"} if cookie else {}
    host = app.external_url.split("://", 1)[1]
    return ws_connect(f"ws://{host}/ws", sock=sock, additional_headers=headers, open_timeout=TIMEOUT,
                      close_timeout=TIMEOUT)


def test_websocket_through_the_outpost(stack, proxied, users, browser, observe):
    login(browser, proxied.external_url + "/", "gina", PASSWORD)
    cookie = browser.cookie(proxied.cookie_name)
    assert cookie
    with _ws(proxied, stack.standalone.port, cookie) as ws:
        upgrade = json.loads(ws.recv(timeout=TIMEOUT))
        assert header_values(upgrade, "X-authentik-username") == ["gina"]
        for text in ("hello", "x" * 70_000):
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text
    observe("standalone", "proxy mode: websocket upgrade headers at the app",
            sorted({k for k, _ in upgrade["headers"]}, key=str.lower))
    # anonymous: a raw upgrade request (the websockets client would try to follow the 302 to an http:// URL)
    with Browser() as anonymous:
        r = anonymous.get(proxied.external_url + "/ws", headers=UPGRADE)
    assert r.status_code == 302 and r.headers.get("x-upstream") is None, r.status_code
    assert "upgrade" not in r.headers.get("connection", "").lower()


def test_forward_auth_through_a_proxy_with_the_standalone_outpost(stack, users, proxy_factory, upstream, browser):
    """The standalone outpost behind Caddy (forward_single), and revocation reaching it (THREATS 12)."""
    proxy = proxy_factory("caddy", outpost=stack.outpost_address, upstream=upstream.address)
    try:
        stack.add_app("fwd-standalone", proxy.external_url, group=GROUP)
        ivy = stack.user("ivy", PASSWORD, [GROUP])
        result = login(browser, proxy.external_url + "/x", "ivy", PASSWORD)
        assert header_values(echo_of(result.response), "X-authentik-username") == ["ivy"]
        stack.set_groups(ivy, [])
        until(lambda: browser.get(proxy.external_url + "/y").status_code == 403, REVOKED_WITHIN,
              "403 at the standalone outpost after removal from the group", stack.logs)
    finally:
        proxy.stop()


def test_outpost_restart_keeps_the_session(stack, proxied, users, browser):
    """The memory store's file snapshot: ``ak outpost proxy`` stopped and started, the browser stays in."""
    login(browser, proxied.external_url + "/", "gina", PASSWORD)
    assert echo_of(browser.get(proxied.external_url + "/before")).get("path") == "/before"
    stack.standalone.restart()
    stack.wait_served(proxied.external_url)
    r = browser.get(proxied.external_url + "/after")
    assert header_values(echo_of(r), "X-authentik-username") == ["gina"], stack.standalone.tail()


def test_proxy_mode_forwards_the_request_target_byte_for_byte(stack, proxied, users, browser):
    """The upstream receives exactly the request target the outpost judged (issue 8 item 6, THREATS 4): the
    outpost's HTTP client no longer resolves ``%2e%2e`` or decodes ``%3B`` / ``%2F`` on the way (before, a
    signed-in request for ``/public/%2e%2e/admin`` reached the upstream as ``/admin``). Anonymous, the same
    targets get the login, never the upstream."""
    login(browser, proxied.external_url + "/", "gina", PASSWORD)
    cookie = ("Cookie", f"{proxied.cookie_name}={browser.cookie(proxied.cookie_name)}")
    host = ("Host", proxied.external_url.split("://", 1)[1])
    for target in ("/public/%2e%2e/admin", "/x%3By", "/a/../b", "/%7Eu", "/q?next=%2F..%2Fadmin", "/a%2Fb"):
        r = raw(stack.standalone.port, "GET", target, [host, cookie])
        assert r.status == 200 and reached(r) and r.json()["raw_path"] == target, f"{target}: {r}"
        anonymous = raw(stack.standalone.port, "GET", target, [host])
        assert anonymous.status == 302 and not reached(anonymous), f"anonymous {target}: {anonymous}"
