"""Issue 8 item 3 through the real stack: a real ``ak server`` (tests/support/server.py) with a real SMTP
sink, driven with httpx.

THREATS "Reset-link poisoning": a password-reset mail whose link is built from the request's ``Host``
hands the reset token to whoever chose that header. Links in mail come only from the configured base
URL (``AUTHENTIK_WEB__BASE_URL`` / System settings -> Base URL), and the core answers only the host
names it knows (THREATS "Unknown Host"), so ``Host: attacker.example`` gets a 400 that names the fix.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import httpx
import pytest

from tests.server.conftest import ADMIN_TOKEN
from tests.support.api import Api
from tests.support.smtp import SmtpSink, body_text

BASE_URL = "https://auth.example.test"
EXECUTOR = "/api/v3/flows/executor/default-recovery-flow/?query="
LINK = re.compile(r"https?://\S+")


@pytest.fixture
def sink():
    with SmtpSink() as smtp:
        yield smtp


def mail_env(sink: SmtpSink, **extra: str) -> dict:
    return {"AUTHENTIK_EMAIL__HOST": "127.0.0.1", "AUTHENTIK_EMAIL__PORT": str(sink.port),
            "AUTHENTIK_EMAIL__FROM": "gatehouse@example.test", **extra}


def add_user(core, username: str) -> str:
    address = f"{username}@example.test"
    api = Api(core.url, ADMIN_TOKEN)
    try:
        api("POST", "/core/users/", json={"username": username, "name": username.title(), "email": address})
    finally:
        api.close()
    return address


def recover(core, name: str, host: str | None = None) -> httpx.Response:
    """Start the default recovery flow for ``name`` the way the flow page's script does, with the ``Host``
    header ``host`` (default: the address the client dialled). Returns the last answer."""
    headers = {"Accept": "application/json"} | ({"Host": host} if host else {})
    with httpx.Client(base_url=core.url, headers=headers, timeout=15.0) as client:
        first = client.get(EXECUTOR)
        if first.status_code != 200:
            return first
        answer = client.post(EXECUTOR, json={"component": "ak-stage-identification", "uid_field": name})
        for _ in range(3):
            if answer.status_code != 302:
                return answer
            answer = client.get(urlsplit(answer.headers["location"])._replace(scheme="", netloc="").geturl())
        return answer


def the_link(message) -> str:
    found = LINK.findall(body_text(message))
    assert len(found) == 1, f"expected one link in the mail, found {found}:\n{body_text(message)}"
    return found[0]


def test_host_header_cannot_redirect_the_reset_link(core_factory, sink):
    """The attack: a reset for the victim with ``Host: attacker.example``. Refused before the flow runs
    (400 naming the host and the variable); a genuine reset mail links to the base URL only."""
    core = core_factory(bootstrap_token=ADMIN_TOKEN, env=mail_env(sink, AUTHENTIK_WEB__BASE_URL=BASE_URL))
    victim = add_user(core, "victim")
    attacked = recover(core, "victim", host="attacker.example")
    assert attacked.status_code == 400, attacked.text
    assert "attacker.example" in attacked.text and "AUTHENTIK_WEB__ALLOWED_HOSTS" in attacked.text
    assert "AUTHENTIK_WEB__BASE_URL" in attacked.text
    assert attacked.headers["content-type"].startswith("text/plain")
    assert "Traceback" not in core.output() and "DisallowedHost" not in core.output()
    # An honest reset for someone else: the only mail that ever arrives (the attacked one was never queued).
    other = add_user(core, "other")
    assert recover(core, "other").json()["component"] == "ak-stage-email"
    (message,) = sink.wait_for(1)
    assert message["To"] == other and victim not in str(message["To"])
    link = the_link(message)
    assert link.startswith(f"{BASE_URL}/if/flow/default-recovery-flow/?flow_token="), link


def test_even_an_allowed_foreign_host_never_reaches_the_link(core_factory, sink):
    """With ``AUTHENTIK_WEB__ALLOWED_HOSTS=*`` (answer any host, warned about at start) the attacker's host
    is served, and the mail still links to the base URL."""
    core = core_factory(bootstrap_token=ADMIN_TOKEN, env=mail_env(
        sink, AUTHENTIK_WEB__BASE_URL=BASE_URL, AUTHENTIK_WEB__ALLOWED_HOSTS="*"))
    add_user(core, "victim")
    answer = recover(core, "victim", host="attacker.example")
    assert answer.status_code == 200 and answer.json()["component"] == "ak-stage-email", answer.text
    link = the_link(sink.wait_for(1)[0])
    assert link.startswith(f"{BASE_URL}/if/flow/default-recovery-flow/?flow_token=") and "attacker" not in link
    warnings = [json.loads(line) for line in core.output().splitlines()
                if line.startswith("{") and "AUTHENTIK_WEB__ALLOWED_HOSTS" in line]
    assert any(w["level"] == "warning" and "*" in w["event"] for w in warnings), core.tail()


def test_without_a_base_url_no_link_leaves_and_the_log_says_what_to_set(core_factory, sink):
    core = core_factory(bootstrap_token=ADMIN_TOKEN, env=mail_env(sink))
    add_user(core, "victim")
    known = recover(core, "victim").json()
    unknown = recover(core, "nobody-here").json()
    assert known == unknown, "the same answer whether or not the name exists"
    assert known["component"] == "ak-stage-email"
    assert "cannot send" in json.dumps(known["response_errors"]), known
    assert "AUTHENTIK_WEB__BASE_URL" in core.output()
    # The mail would have gone out by now had it been queued: the next mail proves the sender is idle.
    assert sink.messages == []


def test_start_up_log_names_the_hosts_answered(core_factory):
    core = core_factory(env={"AUTHENTIK_WEB__BASE_URL": BASE_URL, "AUTHENTIK_WEB__ALLOWED_HOSTS": "sso.internal"})
    lines = [json.loads(line) for line in core.output().splitlines() if line.startswith("{")]
    hosts = [line for line in lines if "hosts" in line]
    assert hosts, core.tail()
    answered = hosts[0]["hosts"]
    for name in ("auth.example.test", "sso.internal", "localhost", "127.0.0.1"):
        assert name in answered, answered
    # Every known name is served; an unknown one is not.
    for host in ("auth.example.test", f"localhost:{core.http_port}", "sso.internal", "[::1]"):
        assert httpx.get(core.url + "/if/flow/default-authentication-flow/", headers={"Host": host}).status_code \
            == 200, host
    refused = httpx.get(core.url + "/if/flow/default-authentication-flow/", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and "evil.example" in refused.text


def test_outpost_paths_still_answer_any_host(core_factory):
    """The embedded outpost on the same front serves the applications' own hosts: only Django is restricted."""
    core = core_factory(env={"AUTHENTIK_WEB__BASE_URL": BASE_URL})
    ping = httpx.get(core.url + "/outpost.goauthentik.io/ping", headers={"Host": "app.example.test"})
    assert ping.status_code in (200, 204), ping.text
    assert httpx.get(core.url + "/-/health/live/", headers={"Host": "anything.example"}).status_code == 200
