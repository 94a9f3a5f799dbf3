"""The hot path's memoisation (apps.Apps.lookup, ProxyOutpost.peer_trusted, AppConfig.cookie_name) gives the
same answers as computing them, stays bounded, and follows a change of the trusted networks."""

import hashlib
from types import SimpleNamespace

import pytest
from multidict import CIMultiDict

from outpost.proxy import apps as apps_module
from outpost.proxy import headers as hdr
from outpost.proxy import state
from outpost.proxy.apps import Apps, UnknownHost
from outpost.proxy.forward_auth import ProxyOutpost
from outpost.proxy.session import MemoryStore, Session, sign_cookie, unsign_cookie
from protocols.trust import TrustedNetworks

from .conftest import provider_json


def test_lookup_repeats_the_same_answers():
    apps = Apps.from_snapshot([provider_json()])
    for _ in range(3):
        assert apps.lookup("EXT.t.goauthentik.io.").pk == 1
        with pytest.raises(UnknownHost) as exc:
            apps.lookup("evil.example")
        assert exc.value.host == "evil.example"
    assert apps.lookup("ext.t.goauthentik.io:443", "https").pk == 1
    with pytest.raises(UnknownHost):
        apps.lookup("ext.t.goauthentik.io:443", "http")  # the scheme is part of the key (its default port)
    assert apps.lookup("ext.t.goauthentik.io:443", "https").pk == 1


def test_lookup_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(apps_module, "LOOKUP_CACHE", 8)
    apps = Apps.from_snapshot([provider_json()])
    for i in range(50):
        with pytest.raises(UnknownHost):
            apps.lookup(f"junk{i}.example")
        assert len(apps._lookups) <= 8
    assert apps.lookup("ext.t.goauthentik.io").pk == 1


def test_peer_trusted_follows_the_trusted_networks(monkeypatch):
    monkeypatch.setattr(state, "PEER_CACHE", 4)
    outpost = ProxyOutpost(store=MemoryStore(), trusted=TrustedNetworks.parse("10.0.0.0/8"))

    def asks(remote):
        return outpost.peer_trusted(SimpleNamespace(remote=remote))

    assert asks("10.1.2.3") and asks("10.1.2.3")
    assert not asks("192.0.2.1") and not asks(None) and not asks("garbage")
    outpost.trusted = TrustedNetworks.parse("192.0.2.0/24")
    assert not asks("10.1.2.3") and asks("192.0.2.1")
    for i in range(20):
        assert not asks(f"198.51.100.{i}")
        assert len(outpost._peers) <= 4


def test_cookie_name_unchanged(app_config):
    expected = "authentik_proxy_" + hashlib.sha256(app_config.client_id.encode()).hexdigest()[:8]
    assert app_config.cookie_name == expected == app_config.cookie_name


def test_identity_answer_is_built_once_per_session_and_application(monkeypatch):
    monkeypatch.setattr(state, "ANSWER_CACHE", 4)
    outpost = ProxyOutpost(store=MemoryStore())
    outpost.update([provider_json()])
    app = outpost.apps.configs[0]
    claims = {"sub": "u1", "preferred_username": "alice", "groups": ["a", "b"]}
    session = Session("s" * 43, app.client_id, claims, "token", expires_at=2e9)
    first = outpost.identity_answer(app, session, stored=True)
    assert first == CIMultiDict(hdr.identity_headers(app, claims, "token", outpost.version))
    assert outpost.identity_answer(app, session, stored=True) is first
    header_session = Session("", app.client_id, claims, "token", expires_at=2e9)  # header auth: never kept
    assert outpost.identity_answer(app, header_session, stored=False) is not outpost.identity_answer(
        app, header_session, stored=False)
    for i in range(20):
        outpost.identity_answer(app, Session(f"{i:043d}", app.client_id, claims, "t", expires_at=2e9), stored=True)
        assert len(outpost._answers) <= 4
    outpost.identity_answer(app, session, stored=True)
    outpost.update([provider_json(name="renamed")])  # a refresh: a new AppConfig, and the cache is emptied
    assert not outpost._answers
    renamed = outpost.identity_answer(outpost.apps.configs[0], session, stored=True)
    assert renamed["X-Authentik-Meta-Provider"] == "renamed" and renamed is not first


def test_cookie_id_answers_as_unsign_cookie(monkeypatch):
    monkeypatch.setattr(state, "COOKIE_CACHE", 4)
    outpost = ProxyOutpost(store=MemoryStore())
    outpost.update([provider_json()])
    app = outpost.apps.configs[0]
    good = sign_cookie("s" * 43, cookie_secret=app.cookie_secret, client_id=app.client_id)
    other = sign_cookie("s" * 43, cookie_secret=app.cookie_secret, client_id="another-client")
    for value in (good, good, other, other, None, "", "garbage", good[:-1] + "x", good + "x"):
        expected = unsign_cookie(value, cookie_secret=app.cookie_secret, client_id=app.client_id)
        assert outpost.cookie_id(app, value) == expected
    assert outpost.cookie_id(app, good) == "s" * 43
    for i in range(20):
        outpost.cookie_id(app, sign_cookie(f"{i:043d}", cookie_secret=app.cookie_secret, client_id=app.client_id))
        assert len(outpost._cookies) <= 4
    outpost.update([provider_json(cookie_secret="D" * 32)])  # a new secret: the old cookie no longer verifies
    assert outpost.cookie_id(outpost.apps.configs[0], good) is None
