"""Fixtures for the OAuth2/OIDC provider tests: real scope mappings and flows from the built-in
blueprints, providers with each signing mode, and logged-in browsers (Django test clients with a
real session and AuthenticatedSession row; the login flow itself is tested elsewhere)."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
from django.test import Client

from core.accounts.models import Application, AuthenticatedSession, Group, User
from core.blueprints.apply import BUILTIN_DIR, apply_file
from core.flows.models import Flow
from core.oidc.keys import default_signing_key
from core.oidc.models import OAuth2Provider, ScopeMapping

BASE = "http://testserver"
REDIRECT = "https://grafana.example.com/login/generic_oauth"
BLUEPRINTS = ["00-system-providers-oauth2.yaml", "00-system-providers-proxy.yaml",
              "10-flow-default-authentication-flow.yaml",
              "20-flow-default-provider-authorization-explicit-consent.yaml",
              "20-flow-default-provider-authorization-implicit-consent.yaml"]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@pytest.fixture
def blueprints(db):
    for name in BLUEPRINTS:
        apply_file(BUILTIN_DIR / name)
    return {m.scope_name: m for m in ScopeMapping.objects.all()}


@pytest.fixture
def make_provider(blueprints):
    def make(slug: str = "grafana", *, signing: str | None = None, client_type: str = "confidential",
             redirect_uris=None, scopes=("openid", "profile", "email", "offline_access"),
             flow: str = "default-provider-authorization-implicit-consent", **extra) -> OAuth2Provider:
        provider = OAuth2Provider.objects.create(
            name=f"{slug}-oauth", client_type=client_type, client_id=f"{slug}-client",
            client_secret=f"{slug}-secret-" + "s" * 40,
            redirect_uris=redirect_uris if redirect_uris is not None else [
                {"matching_mode": "strict", "url": REDIRECT}],
            signing_key=default_signing_key(signing) if signing else None,
            authorization_flow=Flow.objects.get(slug=flow) if flow else None, **extra)
        provider.property_mappings.add(*[blueprints[s] for s in scopes])
        Application.objects.create(name=slug.title(), slug=slug, provider=provider)
        return provider

    return make


@pytest.fixture
def make_user(db):
    def make(username: str = "alice", groups=(), **extra) -> User:
        user = User.objects.create_user(username, f"{username}@example.com", "pw", name=f"{username.title()} Doe",
                                        **extra)
        for name in groups:
            group, _ = Group.objects.get_or_create(name=name)
            user.groups.add(group)
        return user

    return make


def login(user: User) -> tuple[Client, AuthenticatedSession]:
    """A browser logged in as ``user``: Django session + the AuthenticatedSession the flow would make."""
    client = Client()
    client.force_login(user)
    # login() records the row itself (core/accounts/signals.py); get it, or make it if that ever changes.
    session, _ = AuthenticatedSession.objects.get_or_create(session_key=client.session.session_key,
                                                            defaults={"user": user})
    return client, session


@pytest.fixture
def alice(make_user) -> User:
    return make_user("alice", groups=("Grafana Editors",))


@pytest.fixture
def browser(alice):
    return login(alice)
