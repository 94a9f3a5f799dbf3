"""AUTHENTIK_LOG_LEVEL=debug shows what an operator needs to diagnose a login (issue 8 item 16), and no secret.

A real ``ak server`` at ``debug`` and one at ``info`` get the same traffic: a blueprint from
AUTHENTIK_BLUEPRINTS_DIR (a policy bound to the login flow, a user with a password, a token with a key), a wrong
then a right password through the flow executor API, API calls with a token and with the session, an outpost
configuration change and a revoked session (the outpost link's TRIGGER_UPDATE and SESSION_END). Then the debug
lines for stages, policies, the outpost link and blueprints must be there at debug and absent at info, and no
password, key, token, cookie or the secret key may appear in any line at either level. ``ak apply_blueprint``,
``ak worker`` and ``ak outpost proxy`` are run at both levels too (the level must reach their loggers).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import ADMIN_PASSWORD, ADMIN_TOKEN
from tests.support.outpost import OutpostProcess
from tests.support.server import REPO, SECRET_KEY, start_core

BLUEPRINT_PASSWORD = "Blueprint-user-password-9!"  # noqa: S105 - test values that must never be logged
BLUEPRINT_TOKEN_KEY = "blueprint-token-key-" + "f00d" * 8
WRONG_PASSWORD = "Wrong-password-typed-by-a-user-1"  # noqa: S105
BLUEPRINT = f"""
version: 1
metadata: {{name: debug-log-test}}
entries:
  - model: authentik_policies_expression.expressionpolicy
    id: allow
    identifiers: {{name: debug-log-allow}}
    attrs: {{expression: "ak_message('checked by debug-log-allow')\\nreturn True"}}
  - model: authentik_policies.policybinding
    identifiers: {{target: !Find [authentik_flows.flow, [slug, default-authentication-flow]], order: 0}}
    attrs: {{policy: !KeyOf allow}}
  - model: authentik_core.user
    id: user
    identifiers: {{username: blueprint-user}}
    attrs: {{name: Blueprint User, password: {BLUEPRINT_PASSWORD}}}
  - model: authentik_core.token
    identifiers: {{identifier: blueprint-token}}
    attrs: {{user: !KeyOf user, intent: api, key: {BLUEPRINT_TOKEN_KEY}, expiring: false}}
"""
EXECUTOR = "/api/v3/flows/executor/default-authentication-flow/?query="


def records(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def events(text: str, logger: str, event: str) -> list[dict]:
    return [r for r in records(text) if r.get("logger") == logger and r.get("event") == event]


def until(predicate, seconds: float, what: str, detail=lambda: ""):
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s\n{detail()}")
        time.sleep(0.05)
    return value


def ak(core, *args: str, level: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env={**core.env, "AUTHENTIK_LOG_LEVEL": level}, timeout=300)


def exercise(tmp_path: Path, level: str) -> dict:
    """Run a core at ``level`` through the traffic above; returns its output, the other commands' output and the
    secrets seen on the way."""
    blueprints = tmp_path / "blueprints"
    blueprints.mkdir(parents=True)
    (blueprints / "debug-log.yaml").write_text(BLUEPRINT)
    core = start_core(tmp_path / "core", env={"AUTHENTIK_LOG_LEVEL": level, "AUTHENTIK_BLUEPRINTS_DIR": str(blueprints)},
                      bootstrap_password=ADMIN_PASSWORD, bootstrap_token=ADMIN_TOKEN)
    out: dict = {"secrets": {ADMIN_PASSWORD, ADMIN_TOKEN, SECRET_KEY, BLUEPRINT_PASSWORD, BLUEPRINT_TOKEN_KEY,
                             WRONG_PASSWORD}}
    try:
        api = httpx.Client(base_url=core.url + "/api/v3", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                           timeout=30)
        embedded = api.get("/outposts/instances/", params={"managed": "goauthentik.io/outposts/embedded"}).json()
        embedded = embedded["results"][0]
        until(lambda: events(core.output(), "gatehouse.outposts.websocket", "outpost connected"), 30,
              "the embedded outpost connects", core.tail)
        with httpx.Client(base_url=core.url, timeout=30, follow_redirects=True) as browser:
            assert browser.get(EXECUTOR).json()["component"] == "ak-stage-identification"
            answer = browser.post(EXECUTOR, json={"component": "ak-stage-identification", "uid_field": "akadmin"})
            assert answer.json()["component"] == "ak-stage-password"
            wrong = browser.post(EXECUTOR, json={"component": "ak-stage-password", "password": WRONG_PASSWORD})
            assert wrong.json()["response_errors"], wrong.text
            done = browser.post(EXECUTOR, json={"component": "ak-stage-password", "password": ADMIN_PASSWORD})
            assert done.json()["component"] == "xak-flow-redirect", done.text
            out["secrets"] |= {v for v in browser.cookies.values() if len(v) >= 8}
            assert browser.get("/api/v3/core/users/me/").status_code == 200
        assert api.get("/core/users/").status_code == 200
        key = api.get(f"/core/tokens/{embedded['token_identifier']}/view_key/").json()["key"]
        out["secrets"].add(key)
        # TRIGGER_UPDATE: the embedded outpost's configuration changes; SESSION_END: the login's session is revoked.
        api.patch(f"/outposts/instances/{embedded['pk']}/",
                  json={"config": {**embedded["config"], "refresh_interval": "minutes=6"}}).raise_for_status()
        for session in api.get("/core/authenticated_sessions/").json()["results"]:
            api.delete(f"/core/authenticated_sessions/{session['uuid']}/").raise_for_status()
        if level in ("debug", "trace"):
            until(lambda: events(core.output(), "gatehouse.outpost.link", "session end from the core"), 10,
                  "SESSION_END reaches the embedded outpost", core.tail)
        else:
            time.sleep(2)  # what would have been logged has been by now
        out["apply"] = ak(core, "apply_blueprint", str(blueprints / "debug-log.yaml"), level=level)
        # ak worker: a second login's session has expired; the worker deletes it and tells the outposts.
        with httpx.Client(base_url=core.url, timeout=30, follow_redirects=True) as browser:
            browser.get(EXECUTOR)
            browser.post(EXECUTOR, json={"component": "ak-stage-identification", "uid_field": "akadmin"})
            done = browser.post(EXECUTOR, json={"component": "ak-stage-password", "password": ADMIN_PASSWORD})
            assert done.json()["component"] == "xak-flow-redirect", done.text
            out["secrets"] |= {v for v in browser.cookies.values() if len(v) >= 8}
        expire = ak(core, "shell", "--no-imports", "-c", "from django.utils import timezone; from core.accounts.models import "
                    "AuthenticatedSession as S; print(S.objects.update(expires=timezone.now()))", level="warning")
        assert expire.returncode == 0 and expire.stdout.split() == ["1"], expire.stdout + expire.stderr
        out["worker"] = ak(core, "worker", "--once", level=level)
        # A standalone outpost at the same level, with its own token.
        created = api.post("/outposts/instances/", json={"name": f"debug-{level}", "type": "proxy",
                                                          "providers": []}).json()
        token = api.get(f"/core/tokens/{created['token_identifier']}/view_key/").json()["key"]
        out["secrets"].add(token)
        outpost = OutpostProcess(tmp_path / "outpost", core.url, token, env={"AUTHENTIK_LOG_LEVEL": level})
        outpost.start()
        try:
            outpost.wait_connected()
            time.sleep(0.5)
        finally:
            outpost.stop()
        out["outpost"] = outpost.log.read_text(errors="replace")
        api.close()
    finally:
        core.stop()
    out["core"] = core.output()
    return out


@pytest.fixture(scope="module")
def debug(tmp_path_factory):
    return exercise(tmp_path_factory.mktemp("debug"), "debug")


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    return exercise(tmp_path_factory.mktemp("info"), "info")


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """Everything debug shows and more, other libraries' debug lines included: still no secret."""
    return exercise(tmp_path_factory.mktemp("trace"), "trace")


def test_debug_shows_the_login_stage_by_stage(debug):
    log = debug["core"]
    planned = events(log, "gatehouse.flows", "flow planned")
    assert planned and planned[0]["flow"] == "default-authentication-flow"
    assert planned[0]["stages"][:2] == ["default-authentication-identification", "default-authentication-password"]
    stages = [(r["stage"], r["method"], r["result"]) for r in events(log, "gatehouse.flows", "flow stage")]
    for expected in [("default-authentication-identification", "GET", "shown"),
                     ("default-authentication-identification", "POST", "passed"),
                     ("default-authentication-password", "POST", "invalid"),
                     ("default-authentication-password", "POST", "passed"),
                     ("default-authentication-login", "GET", "passed")]:
        assert expected in stages, stages
    invalid = next(r for r in events(log, "gatehouse.flows", "flow stage") if r["result"] == "invalid")
    assert list(invalid["errors"]) == ["password"] and invalid["errors"]["password"]  # the reason, not the value
    assert events(log, "gatehouse.flows", "flow finished")[0]["to"] == "/"


def test_debug_shows_policy_results_with_their_reasons(debug):
    log = debug["core"]
    binding = [r for r in events(log, "gatehouse.policies", "policy binding") if r.get("policy") == "debug-log-allow"]
    assert binding, "no line for the blueprint's policy binding"
    assert binding[0]["passing"] is True and binding[0]["messages"] == ["checked by debug-log-allow"]
    assert binding[0]["target"] == "Flow default-authentication-flow" and binding[0]["order"] == 0
    result = [r for r in events(log, "gatehouse.policies", "policy result")
              if r["target"] == "Flow default-authentication-flow"]
    assert result and result[0]["passing"] is True and result[0]["mode"] in ("any", "all")


def test_debug_shows_the_outpost_link(debug):
    log = debug["core"]
    assert events(log, "gatehouse.outposts.websocket", "hello from outpost")  # core side
    assert events(log, "gatehouse.outpost.link", "hello sent to the core")  # the embedded outpost's side
    sent = {r["instruction"] for r in events(log, "gatehouse.outposts.hub", "message to outpost")}
    assert {"trigger_update", "session_end"} <= sent, sent
    assert events(log, "gatehouse.outpost.link", "update triggered by the core")
    assert events(log, "gatehouse.outpost.link", "session end from the core")
    assert events(log, "gatehouse.outposts.hub", "outpost messages published")


def test_debug_shows_blueprint_decisions(debug):
    log = debug["core"]
    entries = [r for r in events(log, "gatehouse.blueprints", "blueprint entry") if r["blueprint"] == "debug-log-test"]
    assert [(r["model"], r["action"]) for r in entries] == [
        ("authentik_policies_expression.expressionpolicy", "created"), ("authentik_policies.policybinding", "created"),
        ("authentik_core.user", "created"), ("authentik_core.token", "created")]
    assert events(log, "gatehouse.blueprints", "applying blueprint")
    # ak apply_blueprint on the same file: every entry is decided again, nothing changes.
    applied = [r for r in records(debug["apply"].stderr) if r.get("event") == "blueprint entry"]
    assert debug["apply"].returncode == 0, debug["apply"].stderr[-2000:]
    assert {r["action"] for r in applied} == {"unchanged"} and len(applied) == 4, applied


def test_debug_reaches_the_worker_and_the_standalone_outpost(debug):
    assert debug["worker"].returncode == 0, debug["worker"].stderr[-2000:]
    published = events(debug["worker"].stderr, "gatehouse.outposts.hub", "outpost messages published")
    assert ["session_end -> every outpost"] in [r["messages"] for r in published], debug["worker"].stderr[-2000:]
    assert events(debug["outpost"], "gatehouse.outpost.link", "hello sent to the core")


def test_info_has_no_debug_line(info):
    for name in ("core", "outpost"):
        levels = {r["level"] for r in records(info[name])}
        assert "debug" not in levels and "trace" not in levels, name
    for name in ("apply", "worker"):
        assert info[name].returncode == 0, info[name].stderr[-2000:]
        assert not [r for r in records(info[name].stderr) if r.get("level") == "debug"], name
    assert events(info["core"], "gatehouse.events", "event")  # the info lines are still there


def test_trace_adds_link_frames(trace):
    assert events(trace["core"], "gatehouse.outposts.websocket", "frame from outpost")
    assert events(trace["outpost"], "gatehouse.outpost.link", "ack from the core")
    assert events(trace["core"], "gatehouse.flows", "flow stage")  # and what debug shows


@pytest.mark.parametrize("level", ["debug", "info", "trace"])
def test_no_secret_in_any_line(request, level):
    run = request.getfixturevalue(level)
    text = "\n".join([run["core"], run["outpost"], run["apply"].stdout, run["apply"].stderr,
                      run["worker"].stdout, run["worker"].stderr])
    for secret in run["secrets"]:
        assert secret not in text, f"a secret ({secret[:4]}...) appears in the {level} output"
