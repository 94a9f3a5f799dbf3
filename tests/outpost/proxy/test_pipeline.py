"""outpost/proxy/pipeline.py: decide() on every path, access descriptions, cross-application sessions."""

import pytest

from outpost.proxy.pipeline import Access, AccessError, Identity, Request, Verdict, decide
from protocols import forward as fw
from protocols.forward import RequestClass

NOW = 1_000_000.0
CLIENT = "client-a"


def tgt(path="/", query=""):
    return fw.Target("https", fw.Host("app.example.com"), path, query)


def req(target=None, *, flavour="traefik", cls=RequestClass.NAVIGATION, skip=False, identity=None):
    return Request(flavour, target if target is not None else tgt(), cls, skip, identity, NOW)


def me(sub="alice", client=CLIENT, exp=NOW + 60):
    return Identity(client, sub, exp, sub)


def test_target_errors():
    assert decide(req(fw.MissingTarget("x")), client_id=CLIENT, access=None) is Verdict.CONFIG_ERROR
    assert decide(req(fw.BadTarget("x")), client_id=CLIENT, access=None) is Verdict.BAD_REQUEST


def test_markers_win():
    assert decide(req(tgt("/outpost.goauthentik.io/callback", "X-authentik-auth-callback=true&code=c")),
                  client_id=CLIENT, access=None) is Verdict.HANDLE_CALLBACK
    assert decide(req(tgt("/", "X-authentik-auth-callback=true")), client_id=CLIENT, access=None) is Verdict.HANDLE_CALLBACK
    assert decide(req(tgt("/", "X-authentik-logout=true"), identity=me()), client_id=CLIENT, access=None) is Verdict.HANDLE_SIGN_OUT
    assert decide(req(tgt("/outpost.goauthentik.io/sign_out")), client_id=CLIENT, access=None) is Verdict.HANDLE_SIGN_OUT


@pytest.mark.parametrize("flavour", ["traefik", "caddy", "envoy", "proxy"])
def test_unauthenticated_navigation_redirects(flavour):
    assert decide(req(flavour=flavour), client_id=CLIENT, access=None) is Verdict.LOGIN_REDIRECT


def test_nginx_unauthenticated_is_401():
    assert decide(req(flavour="nginx"), client_id=CLIENT, access=None) is Verdict.UNAUTHORIZED_401


@pytest.mark.parametrize("flavour", ["traefik", "nginx", "proxy"])
def test_api_clients_get_401(flavour):
    assert decide(req(flavour=flavour, cls=RequestClass.API), client_id=CLIENT, access=None) is Verdict.UNAUTHORIZED_401


def test_outpost_path_target_gains_nothing():
    """THREATS 2: authentik's nginx answered 200 for a target under /outpost.goauthentik.io."""
    for flavour in ("nginx", "traefik"):
        v = decide(req(tgt("/outpost.goauthentik.io/start"), flavour=flavour), client_id=CLIENT, access=None)
        assert v in (Verdict.UNAUTHORIZED_401, Verdict.LOGIN_REDIRECT)


def test_skip_path_unauthenticated():
    assert decide(req(skip=True), client_id=CLIENT, access=None) is Verdict.ALLOW_UNAUTHENTICATED_PATH
    assert decide(req(skip=True, cls=RequestClass.API), client_id=CLIENT, access=None) is Verdict.ALLOW_UNAUTHENTICATED_PATH


def test_session_allows():
    assert decide(req(identity=me()), client_id=CLIENT, access=None) is Verdict.ALLOW
    assert decide(req(identity=me(), skip=True), client_id=CLIENT, access=None) is Verdict.ALLOW


def test_cross_application_session_refused():
    """THREATS 8: a session issued for client-b is no session for client-a."""
    v = decide(req(identity=me(client="client-b")), client_id=CLIENT, access=None)
    assert v is Verdict.LOGIN_REDIRECT
    v = decide(req(identity=me(client="client-b"), flavour="nginx"), client_id=CLIENT, access=None)
    assert v is Verdict.UNAUTHORIZED_401


def test_expired_or_subjectless_session_is_none():
    assert decide(req(identity=me(exp=NOW)), client_id=CLIENT, access=None) is Verdict.LOGIN_REDIRECT
    assert decide(req(identity=me(sub="")), client_id=CLIENT, access=None) is Verdict.LOGIN_REDIRECT


def test_access_enforced_every_request():
    allow_alice = Access.from_json({"default": "deny", "allow_subjects": ["alice"]})
    assert decide(req(identity=me("alice")), client_id=CLIENT, access=allow_alice) is Verdict.ALLOW
    assert decide(req(identity=me("bob")), client_id=CLIENT, access=allow_alice) is Verdict.FORBIDDEN_403
    revoked = Access.from_json({"default": "allow", "deny_subjects": ["alice"]})
    assert decide(req(identity=me("alice")), client_id=CLIENT, access=revoked) is Verdict.FORBIDDEN_403
    assert decide(req(identity=me("bob")), client_id=CLIENT, access=revoked) is Verdict.ALLOW
    # a refused user still reaches an explicitly unauthenticated path, but without identity
    assert decide(req(identity=me("alice"), skip=True), client_id=CLIENT, access=revoked) is Verdict.ALLOW_UNAUTHENTICATED_PATH


def test_access_shape():
    assert Access.from_json(None) is None
    a = Access.from_json({})
    assert not a.allows("x")
    a = Access.from_json({"default": "allow", "allow_subjects": ["x"], "deny_subjects": ["x"]})
    assert not a.allows("x") and a.allows("y") and not a.allows("")
    for bad in ([], "everyone", {"default": "maybe"}, {"allow_subjects": "alice"}, {"allow_subjects": [1]},
                {"groups": ["admins"]}):
        with pytest.raises(AccessError):
            Access.from_json(bad)


def test_every_flavour_answers_every_verdict():
    from outpost.proxy.pipeline import FLAVOURS, RESPONSES

    assert set(FLAVOURS) == {"traefik", "caddy", "nginx", "envoy", "proxy"}
    assert {(f, v) for f in FLAVOURS for v in Verdict} == set(RESPONSES)


@pytest.mark.parametrize("flavour", ["traefik", "caddy", "nginx", "envoy", "proxy"])
def test_credentials_sent_are_refused_not_redirected(flavour):
    sent = Request(flavour, tgt(), RequestClass.NAVIGATION, False, None, NOW, credentials_sent=True)
    assert decide(sent, client_id=CLIENT, access=None) is Verdict.CREDENTIALS_REFUSED_401
    skipped = Request(flavour, tgt(), RequestClass.NAVIGATION, True, None, NOW, credentials_sent=True)
    assert decide(skipped, client_id=CLIENT, access=None) is Verdict.ALLOW_UNAUTHENTICATED_PATH


def test_identity_provider_failure_is_an_input():
    failed = Request("traefik", tgt("/", "X-authentik-logout=true"), RequestClass.NAVIGATION, False, None, NOW,
                     idp_failed=True)
    assert decide(failed, client_id=CLIENT, access=None) is Verdict.IDP_ERROR
    on_skip = Request("traefik", tgt(), RequestClass.NAVIGATION, True, None, NOW, idp_failed=True)
    assert decide(on_skip, client_id=CLIENT, access=None) is Verdict.ALLOW_UNAUTHENTICATED_PATH
