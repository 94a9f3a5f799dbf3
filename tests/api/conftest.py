"""Fixtures for the REST API tests: real tokens through the real Bearer header."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.accounts.models import Application, Group, Token, TokenIntents, User
from core.flows.models import Flow
from core.outposts.models import Outpost
from core.outposts.service import ensure_identity
from core.providers.ldap.models import LDAPProvider
from core.providers.proxy.models import ProxyProvider
from core.providers.radius.models import RadiusProvider


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def api_token(user: User, identifier: str, **extra) -> str:
    token = Token(identifier=identifier, intent=TokenIntents.INTENT_API, user=user, **extra)
    key = token.set_key()
    token.save()
    return key


@pytest.fixture
def admin_user(db) -> User:
    user = User.objects.create_user("akadmin", "admin@example.com", "pw")
    group, _ = Group.objects.get_or_create(name="authentik Admins", defaults={"is_superuser": True})
    user.groups.add(group)
    return user


@pytest.fixture
def admin(admin_user) -> APIClient:
    return bearer(api_token(admin_user, "admin-token"))


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", "alice@example.com", "alice-pw")


@pytest.fixture
def alice_api(alice) -> APIClient:
    return bearer(api_token(alice, "alice-token"))


@pytest.fixture
def flow(db) -> Flow:
    return Flow.objects.create(name="Auth", slug="auth-flow", designation="authentication")


@pytest.fixture
def world(db, flow):
    """Two proxy apps (one on our outpost), an LDAP and a RADIUS app on their own outposts."""
    mine = ProxyProvider.objects.create(name="whoami", external_host="https://whoami.example.com",
                                        internal_host="http://whoami:80", mode="forward_single",
                                        authorization_flow=flow)
    Application.objects.create(name="Who Am I", slug="whoami", provider=mine)
    other = ProxyProvider.objects.create(name="other", external_host="https://other.example.com",
                                         internal_host="http://other:80")
    Application.objects.create(name="Other", slug="other", provider=other)
    orphan = ProxyProvider.objects.create(name="orphan", external_host="https://orphan.example.com",
                                          internal_host="http://orphan:80")
    ldap = LDAPProvider.objects.create(name="ldap", base_dn="DC=ldap,DC=example,DC=com", authorization_flow=flow)
    Application.objects.create(name="LDAP", slug="ldap-app", provider=ldap)
    radius = RadiusProvider.objects.create(name="radius", authorization_flow=flow, shared_secret="s3cret")
    Application.objects.create(name="RADIUS", slug="radius-app", provider=radius)

    proxy_outpost = Outpost.objects.create(name="proxy-outpost", type="proxy")
    proxy_outpost.providers.add(mine, orphan)
    other_outpost = Outpost.objects.create(name="other-outpost", type="proxy")
    other_outpost.providers.add(other)
    ldap_outpost = Outpost.objects.create(name="ldap-outpost", type="ldap")
    ldap_outpost.providers.add(ldap)
    radius_outpost = Outpost.objects.create(name="radius-outpost", type="radius")
    radius_outpost.providers.add(radius)
    keys = {o.name: ensure_identity(o).readable_key
            for o in (proxy_outpost, other_outpost, ldap_outpost, radius_outpost)}
    return {"mine": mine, "other": other, "orphan": orphan, "ldap": ldap, "radius": radius,
            "proxy_outpost": proxy_outpost, "other_outpost": other_outpost, "ldap_outpost": ldap_outpost,
            "radius_outpost": radius_outpost, "keys": keys}
