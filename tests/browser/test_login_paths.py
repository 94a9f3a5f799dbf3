"""Issue 8 items 1, 4 and 5 against a real ``ak server``: the admin's way in is the authentication flow, with its
second factor; Django's admin login form is never served and its POST never logs in; a recovery key runs the
recovery flow and asks for the second factor. Driven with httpx (the attacker's requests) and headless Chromium
(the administrator's journey). tests/web/test_login_paths.py proves the same for every URL of the map in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pyotp
import pytest

from tests.support.server import start_core

PASSWORD = "Correct-Horse-battery-9!"  # noqa: S105 - a test password
BOOTSTRAP_TOKEN = "login-paths-bootstrap-token-" + "x" * 40  # noqa: S105 - a test token
LOGIN_PATH = "/if/flow/default-authentication-flow/"
EXECUTOR = "/api/v3/flows/executor/{slug}/?query="
WAIT_MS = 15_000


class Totp:
    """akadmin's authenticator: each code is used once (the core refuses a replayed time step)."""

    def __init__(self, secret: str):
        self.totp = pyotp.TOTP(secret)
        self.last_step = -1

    def code(self) -> str:
        """The oldest unused code the core takes: it accepts one step of drift either way, so a module that needs
        three codes gets them without waiting for the clock (the step before this one while it has >= 5 s left)."""
        while True:
            clock = time.time()
            now = int(clock // 30)
            lowest = now - 1 if clock - now * 30 < 25 else now
            step = max(lowest, self.last_step + 1)
            if step <= now + 1:  # the core accepts one step of drift either way
                self.last_step = step
                return self.totp.at(step * 30)
            time.sleep(1)


def executor(client: httpx.Client, slug: str, answer: dict | None = None) -> dict:
    url = EXECUTOR.format(slug=slug)
    if answer is None:
        response = client.get(url)
    else:
        response = client.post(url, content=json.dumps(answer), headers={"Content-Type": "application/json"})
        if response.status_code == 302:
            response = client.get(url)
    assert response.status_code == 200, f"{slug}: {response.status_code} {response.text[:300]}"
    return response.json()


def follow(client: httpx.Client, url: str) -> tuple[httpx.Response, list[str]]:
    hops = [url]
    response = client.get(url)
    for _ in range(10):
        if response.status_code not in (301, 302, 303):
            break
        url = urljoin(url, response.headers["location"])
        hops.append(url)
        response = client.get(url)
    return response, hops


@pytest.fixture(scope="module")
def core(tmp_path_factory, chromium):
    server = start_core(tmp_path_factory.mktemp("core"), bootstrap_password=PASSWORD, bootstrap_token=BOOTSTRAP_TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def totp(core) -> Totp:
    """akadmin enrols TOTP through the flow (its session is thrown away afterwards)."""
    with httpx.Client(base_url=core.url, timeout=15.0) as client:
        slug = "default-authentication-flow"
        executor(client, slug)
        executor(client, slug, {"component": "ak-stage-identification", "uid_field": "akadmin"})
        done = executor(client, slug, {"component": "ak-stage-password", "password": PASSWORD})
        assert done["component"] == "xak-flow-redirect", done
        setup = executor(client, "default-authenticator-totp-setup")
        secret = parse_qs(urlsplit(setup["config_url"]).query)["secret"][0]
        device = Totp(secret)
        done = executor(client, "default-authenticator-totp-setup",
                        {"component": "ak-stage-authenticator-totp", "code": device.code()})
        assert done["component"] == "xak-flow-redirect", done
    return device


def logins(core) -> int:
    response = httpx.get(core.url + "/api/v3/events/events/", params={"action": "login", "page_size": 1000},
                         headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"}, timeout=15.0)
    assert response.status_code == 200, response.text[:300]
    return len(response.json()["results"])


def _is_admin_session(client: httpx.Client) -> bool:
    return client.get("/api/v3/core/users/me/").status_code == 200 or client.get("/if/admin/").status_code == 200


def test_admin_login_form_is_never_served_and_its_post_never_logs_in(core, totp):
    """The attack of item 1 (and 5), as an outsider would send it: the superuser's name and password to Django's
    admin login form, 30 times, the last one right. Nothing logs in, no login event."""
    logins_before = logins(core)
    with httpx.Client(base_url=core.url, timeout=15.0) as client:
        page, hops = follow(client, core.url + "/if/admin/")  # whatever page it is, it sets the CSRF cookie
        csrf = client.cookies.get("authentik_csrf") or ""
        answers = []
        for i in range(30):
            password = PASSWORD if i == 29 else f"guess-{i}"
            response = client.post("/if/admin/login/?next=/if/admin/", data={
                "csrfmiddlewaretoken": csrf, "username": "akadmin", "password": password, "next": "/if/admin/"},
                headers={"Referer": core.url + "/if/admin/login/"})
            assert not _is_admin_session(client), f"attempt {i + 1} logged in through Django's admin form"
            answers.append((response.status_code, urlsplit(response.headers.get("location", "")).path))
        assert set(answers) == {(302, LOGIN_PATH)}, answers
        assert urlsplit(hops[-1]).path == LOGIN_PATH, hops
        assert parse_qs(urlsplit(hops[-1]).query)["next"] == ["/if/admin/"], hops
        assert page.status_code == 200 and 'data-component="ak-stage-identification"' in page.text
        assert "id_username" not in page.text
        login_page = client.get("/if/admin/login/", params={"next": "/if/admin/"})
        assert login_page.status_code == 302 and "id_username" not in login_page.text
    assert logins(core) == logins_before


def test_admin_journey_asks_for_the_second_factor(core, totp, page):
    """What the administrator sees: /if/admin/ -> the flow's login -> password -> the TOTP code -> the admin."""
    page.goto(core.url + "/if/admin/")
    page.wait_for_url(lambda url: urlsplit(url).path == LOGIN_PATH, timeout=WAIT_MS)
    assert parse_qs(urlsplit(page.url).query)["next"] == ["/if/admin/"]
    page.fill("#uid_field", "akadmin")
    page.click("form#flow-form button[type=submit]")
    page.fill("#password", PASSWORD)
    page.click("form#flow-form button[type=submit]")
    page.wait_for_selector("#code", timeout=WAIT_MS)
    assert urlsplit(page.url).path == LOGIN_PATH  # not in the admin yet: the second factor is pending
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=core.url, timeout=15.0, cookies=cookies) as probe:
        assert not _is_admin_session(probe), "the session is an admin session before the second factor"
    page.fill("#code", totp.code())
    page.click("form#flow-form button[type=submit]")
    page.wait_for_url(lambda url: urlsplit(url).path == "/if/admin/", timeout=WAIT_MS)
    assert "Gatehouse administration" in page.inner_text("body")


def test_recovery_key_runs_the_recovery_flow_and_asks_for_the_second_factor(core, totp):
    """``ak create_recovery_key`` on the server's data directory; the link logs nobody in by itself."""
    result = subprocess.run([sys.executable, "-m", "core.cli", "create_recovery_key", "1", "akadmin"], env=core.env,
                            cwd=core.cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    link = result.stdout.strip().splitlines()[-1]
    assert link.startswith("/recovery/use-token/?token="), result.stdout
    with httpx.Client(base_url=core.url, timeout=15.0) as client:
        response = client.get(link)
        assert response.status_code == 302 and response.headers["location"] == "/if/flow/default-recovery-flow/"
        assert not _is_admin_session(client)
        challenge = executor(client, "default-recovery-flow")
        assert challenge["component"] == "ak-stage-authenticator-validate", challenge
        assert executor(client, "default-recovery-flow", {
            "component": "ak-stage-authenticator-validate", "code": totp.code()})["component"] == "ak-stage-prompt"
        assert not _is_admin_session(client)
        assert client.get(link).status_code == 404  # spent
