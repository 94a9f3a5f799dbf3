"""Issue 8 item 11 through the real stack: session and CSRF cookies get ``Secure`` whenever the request is
HTTPS, directly on :9443 or per a trusted proxy's ``X-Forwarded-Proto``, and plain HTTP on :9000 still
logs in (THREATS "Cookie over plain HTTP"). The page's Content-Security-Policy is on the wire too.
"""

from __future__ import annotations

import httpx
import pytest

from tests.server.conftest import ADMIN_PASSWORD, ADMIN_TOKEN
from tests.support.server import start_core

PAGE = "/if/flow/default-authentication-flow/"
EXECUTOR = "/api/v3/flows/executor/default-authentication-flow/?query="
COOKIES = ("authentik_session", "authentik_csrf")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    core = start_core(tmp_path_factory.mktemp("core"), bootstrap_password=ADMIN_PASSWORD,
                      bootstrap_token=ADMIN_TOKEN)
    yield core
    core.stop()


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie line, for every cookie the answer sets."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def secure(line: str) -> bool:
    return "secure" in [part.strip().lower() for part in line.split(";")]


def log_in(client: httpx.Client) -> dict[str, str]:
    """Identification and password through the flow executor, as the login page's script does; returns the
    cookies set on the way (the session rotates at login)."""
    seen: dict[str, str] = {}

    def answer(body: dict | None = None) -> dict:
        response = client.post(EXECUTOR, json=body) if body else client.get(EXECUTOR)
        seen.update(set_cookies(response))
        return answer() if response.status_code == 302 else response.json()

    challenge = answer()
    challenge = answer({"component": "ak-stage-identification", "uid_field": "akadmin"})
    challenge = answer({"component": "ak-stage-password", "password": ADMIN_PASSWORD})
    assert challenge["component"] == "xak-flow-redirect", challenge
    return seen


def test_https_listener_sets_secure_cookies(shared):
    with httpx.Client(base_url=shared.https_url, verify=False, timeout=15.0) as client:  # noqa: S501 - self-signed
        page = client.get(PAGE)
        assert page.status_code == 200
        lines = set_cookies(page)
        assert all(name in lines and secure(lines[name]) for name in COOKIES), lines
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        login = log_in(client)
        assert "authentik_session" in login and secure(login["authentik_session"]), login  # the rotated session
        assert client.get("/if/user/").status_code == 200


def test_trusted_proxy_https_sets_secure_cookies(shared):
    """127.0.0.1 is in the default AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS: its X-Forwarded-Proto counts."""
    page = httpx.get(shared.url + PAGE, headers={"X-Forwarded-Proto": "https"})
    lines = set_cookies(page)
    assert all(secure(lines[name]) for name in COOKIES), lines


def test_plain_http_still_works_without_secure(shared):
    with httpx.Client(base_url=shared.url, timeout=15.0) as client:
        lines = set_cookies(client.get(PAGE))
        assert all(name in lines and not secure(lines[name]) for name in COOKIES), lines
        login = log_in(client)
        assert not secure(login["authentik_session"])
        assert client.get("/if/user/").status_code == 200  # the browser sends it back over HTTP: logged in


def test_untrusted_peer_cannot_claim_https(core_factory):
    core = core_factory(env={"AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS": "10.0.0.0/8"})
    lines = set_cookies(httpx.get(core.url + PAGE, headers={"X-Forwarded-Proto": "https"}))
    assert not any(secure(lines[name]) for name in COOKIES), lines
