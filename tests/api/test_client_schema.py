"""Our OpenAPI schema (``/api/v3/schema/``) against what authentik's client (``authentik-client``, pinned in
pyproject.toml) expects, for every operation we serve: method and path, path and query parameters, request
bodies and response fields (tests/support/schema_diff.py). Every difference is printed; the test fails on any
that is not in KNOWN below, each of which says why it stays, and on a KNOWN entry that no longer matches.
"""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings

from core.api.schema import CUSTOM_SETTINGS
from tests.conftest import need

try:
    from tests.support import client_spec, schema_diff

    client_spec.operations()
except ImportError:  # authentik-client missing: need() fails under CI=true, skips elsewhere
    schema_diff = None

pytestmark = pytest.mark.django_db

PROVIDERS = r"(LDAP|OAuth2|Proxy|Radius)Provider"
# (pattern over a difference line, why it is accepted)
KNOWN = [
    (rf"\) {PROVIDERS}\.(authorization|invalidation)_flow: ours may be null",
     "a provider made without these flows through our API or a blueprint answers null (the client itself "
     "always sends both); README 'Managing Gatehouse as code'"),
    (r"\) (LDAPOutpostConfig\.bind_flow_slug|RadiusOutpostConfig\.auth_flow_slug): ours may be null",
     "the same provider without an authorization flow, seen by its outpost"),
    (r"\) ProxyOutpostConfig\.oidc_configuration: type object",
     "the outpost configuration's discovery document is described as a plain object"),
    (r"^GET /api/v3/outposts/(ldap|proxy|radius)/\{id\}/ \(outposts_\w+_retrieve\): the client has no such",
     "ours only: an outpost re-reads one provider's configuration (docs/DESIGN.md, LDAP outpost)"),
    (r"\(outposts_instances_health_list\): query parameters the client has and we do not describe",
     "authentik's schema lists the outpost list's filters on the health action too; they cannot apply to one "
     "outpost's instances"),
    (r"\(policies_password_list\): query parameters the client has and we do not describe: "
     r"\['check_have_i_been_pwned', 'check_zxcvbn', 'hibp_allowed_count', 'zxcvbn_score_threshold'\]",
     "the password policy's Have I Been Pwned and zxcvbn checks are not built"),
    (r": query parameters we describe and the client has not: ",
     "ours only: Gatehouse's own filter names (exact matches beside authentik's __iexact ones, include_groups, "
     "...); a client that does not send them gets authentik's behaviour"),
    (r" body \w+Request\.\w+: the client requires it, ours is optional",
     "we accept a request without it (a default applies); the client always sends it"),
    (r"Token(Request)?\.intent: values \['radius'\] are not in the client's enum",
     "Gatehouse's network passwords (README 'RADIUS outpost'): the client cannot read a token list that holds "
     "one; list with intent=api or intent=app_password"),
    # request fields the client may send and Gatehouse ignores (each listed in README 'Managing Gatehouse as code')
    (r"Request\.managed: the client may send it, we ignore it",
     "managed objects are Gatehouse's own (blueprints, outposts): read-only in our API"),
    (r"Request\.roles: the client may send it, we ignore it", "RBAC roles are not modelled"),
    (r"UserRequest\.last_login: the client may send it, we ignore it", "set by logins only"),
    (r"Request\.(encryption_key|grant_types|logout_method|logout_uri|refresh_token_threshold"
     r"|jwt_federation_providers|jwt_federation_sources|redirect_uri_type): the client may send it, we ignore it",
     "not built for OAuth2/proxy providers: ID token encryption, grant type limits, back-channel logout, "
     "refresh token rotation threshold, JWT federation, redirect URI types"),
    (r"PasswordPolicyRequest\.(check_have_i_been_pwned|check_zxcvbn|hibp_allowed_count|zxcvbn_score_threshold): "
     r"the client may send it, we ignore it", "the password policy's HIBP and zxcvbn checks are not built"),
    (r"ApplicationRequest\.meta_hide: the client may send it", "hiding an application from the portal is not built"),
    (r"EventRequest\.brand: the client may send it", "brands are not built"),
    (r"OutpostRequest\.service_connection: the client may send it", "Gatehouse deploys no outposts"),
]


def our_schema() -> dict:
    with patched_settings(CUSTOM_SETTINGS):
        return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_matches_the_client_on_every_path_we_serve(capsys):
    need(schema_diff is not None, "authentik-client (pip install -e '.[test]')")
    found = schema_diff.differences(our_schema())
    unexplained, used = [], set()
    for line in found:
        matches = [i for i, (pattern, _why) in enumerate(KNOWN) if re.search(pattern, line)]
        used.update(matches)
        if not matches:
            unexplained.append(line)
    with capsys.disabled():
        print(f"\nour schema against authentik-client {client_spec.version()}: {len(found)} differences, "
              f"{len(unexplained)} unexplained")
        for line in found:
            why = next((why for pattern, why in KNOWN if re.search(pattern, line)), "UNEXPLAINED")
            print(f"  {line}\n      -> {why}")
    assert not unexplained, "differences from authentik's schema:\n" + "\n".join(unexplained)
    stale = [pattern for i, (pattern, _why) in enumerate(KNOWN) if i not in used]
    assert not stale, f"KNOWN entries that match nothing any more (remove them): {stale}"


def test_every_client_operation_on_our_paths_is_served_or_listed():
    """An operation the client has under a path prefix we serve, that we do not serve: printed, so that
    README 'Managing Gatehouse as code' (what is not built) stays complete."""
    need(schema_diff is not None, "authentik-client (pip install -e '.[test]')")
    schema = our_schema()
    ours = {op.get("operationId") for methods in schema["paths"].values() for op in methods.values()
            if isinstance(op, dict)}
    parts = [path.removeprefix("/api/v3").split("/")[1:3] for path in schema["paths"] if path.startswith("/api/v3/")]
    prefixes = {f"/{a}/{b}/" for a, b in parts if b and not b.startswith("{")}
    missing = sorted(op.operation_id for op in client_spec.operations().values()
                     if any(op.path.startswith(prefix) for prefix in prefixes) and op.operation_id not in ours)
    print(f"\nclient operations under our paths that we do not serve ({len(missing)}): {', '.join(missing)}")
    assert "core_groups_add_user_create" not in missing and "core_users_recovery_create" not in missing
