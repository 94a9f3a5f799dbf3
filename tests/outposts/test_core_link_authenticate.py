"""CoreLink.authenticate (issues 9, 10): one POST per bind/Access-Request, and a FLOW_ERROR answer -- never an
exception -- whatever the core or the network does (the core away, slow, refusing the call, answering junk)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from outpost.core_link import USER_AGENT, LinkError
from protocols.outpost import AuthAnswer, AuthResult
from tests.outposts.test_core_link import TOKEN, FakeCore, link_factory  # noqa: F401 - the fixture

PASSWORD = "pw;123456"  # noqa: S105 - a test value
OK = {"result": "ok", "reason": "authenticated", "session_id": "ab" * 32, "has_search_permission": True,
      "reply_attributes": [], "user": {"pk": 3, "uid": "u", "username": "alice", "name": "", "email": "",
                                       "is_active": True, "is_superuser": False, "groups": [], "attributes": {}}}


class AuthCore(FakeCore):
    """The fake core of test_core_link with the LDAP and RADIUS config lists and a scripted authenticate."""

    def __init__(self):
        super().__init__(providers=1, kind="ldap")
        self.posts: list[tuple[str, dict, dict]] = []
        self.reply = web.json_response(OK)
        self.delay = 0.0

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_get("/api/v3/outposts/ldap/", self.configs)
        app.router.add_post("/api/v3/outposts/{kind}/{pk}/authenticate/", self.authenticate)
        return app

    async def authenticate(self, request):
        self.posts.append((request.path, await request.json(), dict(request.headers)))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise web.HTTPForbidden()
        if self.delay:
            await asyncio.sleep(self.delay)
        reply, self.reply = self.reply, web.json_response(OK)
        return reply


@pytest.fixture
async def core():
    fake = await AuthCore().start()
    yield fake
    await fake.stop()


async def test_one_post_with_the_links_token(core, link_factory):  # noqa: F811
    link = await link_factory(core.url, kind="ldap")
    answer = await link.authenticate("ldap", 7, "alice", PASSWORD, "2001:db8::5")
    assert isinstance(answer, AuthAnswer) and answer.ok and answer.user.username == "alice"
    assert answer.has_search_permission and answer.session_id == "ab" * 32
    [(path, body, headers)] = core.posts
    assert path == "/api/v3/outposts/ldap/7/authenticate/"
    assert body == {"username": "alice", "password": PASSWORD, "remote_ip": "2001:db8::5"}
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["User-Agent"] == USER_AGENT
    await link.authenticate("radius", "9", "bob", "x", "10.0.0.1")
    assert core.posts[-1][0] == "/api/v3/outposts/radius/9/authenticate/"


async def test_a_failed_login_is_an_answer(core, link_factory):  # noqa: F811
    link = await link_factory(core.url, kind="ldap")
    core.reply = web.json_response({"result": "invalid_credentials", "reason": "Invalid password", "user": None,
                                    "session_id": None, "has_search_permission": False, "reply_attributes": []})
    answer = await link.authenticate("ldap", 1, "alice", "wrong", "10.0.0.1")
    assert answer.result is AuthResult.INVALID_CREDENTIALS and answer.reason == "Invalid password"


@pytest.mark.parametrize("status,says", [(401, "token"), (403, "token"), (404, "not bound"), (400, "HTTP 400"),
                                         (500, "HTTP 500"), (502, "HTTP 502")])
async def test_a_refused_call_is_a_flow_error(core, link_factory, status, says, caplog):  # noqa: F811
    link = await link_factory(core.url, kind="ldap")
    core.reply = web.Response(status=status, text='{"detail": "no"}')
    with caplog.at_level(logging.WARNING, logger="gatehouse.outpost.link"):
        answer = await link.authenticate("ldap", 1, "alice", PASSWORD, "10.0.0.1")
    assert answer.result is AuthResult.FLOW_ERROR and says in answer.reason
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("reply,says", [
    (web.Response(status=200, text="<html>proxy error</html>"), "not JSON"),
    (web.json_response({"result": "ok"}), "not an AuthAnswer"),
    (web.json_response({**OK, "result": "maybe"}), "not an AuthAnswer"),
    (web.json_response([1]), "not an AuthAnswer"),
])
async def test_junk_from_the_core_is_a_flow_error(core, link_factory, reply, says):  # noqa: F811
    link = await link_factory(core.url, kind="ldap")
    core.reply = reply
    answer = await link.authenticate("ldap", 1, "alice", PASSWORD, "10.0.0.1")
    assert answer.result is AuthResult.FLOW_ERROR and says in answer.reason


async def test_a_slow_core_is_a_flow_error_after_the_timeout(core, link_factory):  # noqa: F811
    link = await link_factory(core.url, kind="ldap")
    core.delay = 5.0
    answer = await link.authenticate("ldap", 1, "alice", PASSWORD, "10.0.0.1", timeout=0.2)
    assert answer.result is AuthResult.FLOW_ERROR and "within 0.2 s" in answer.reason


async def test_the_core_away_is_a_flow_error(link_factory):  # noqa: F811
    core = await AuthCore().start()
    link = await link_factory(core.url, kind="ldap")
    await core.stop()
    answer = await link.authenticate("ldap", 1, "alice", PASSWORD, "10.0.0.1", timeout=5)
    assert answer.result is AuthResult.FLOW_ERROR and answer.reason.startswith("core unreachable")


async def test_what_no_core_would_take_is_not_sent(core, link_factory):  # noqa: F811
    link = await link_factory(core.url, kind="ldap")
    for username, password in (("", "pw"), ("alice", "x" * 5000), ("al\x00ice", "pw")):
        answer = await link.authenticate("ldap", 1, username, password, "10.0.0.1")
        assert answer.result is AuthResult.INVALID_CREDENTIALS and "not sent" in answer.reason
        assert "x" * 100 not in answer.reason
    assert core.posts == []


async def test_callers_bugs_raise(core):
    from outpost.core_link import CoreLink

    link = CoreLink(core.url, TOKEN, kind="ldap")
    with pytest.raises(LinkError, match="start"):
        await link.authenticate("ldap", 1, "alice", PASSWORD, "10.0.0.1")
    with pytest.raises(ValueError, match="kind"):
        await link.authenticate("proxy", 1, "alice", PASSWORD, "10.0.0.1")
