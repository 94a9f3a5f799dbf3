"""Issue 12: the admin shows authentik's menus and names, never a name Django generates from a class name
("O auth2 providers", "Password policys", "Ldap providers") or a raw app label ("AUTHENTIK_CORE")."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from core.accounts.admin_site import SECTIONS

pytestmark = pytest.mark.django_db

APPS = r"(?:core|flows|events|policies|outposts|admin|crypto|blueprints|providers_\w+)"
# Django's names from class names ("O auth2 provider", "Password policys", "Authenticator totp stage") and raw
# app labels ("AUTHENTIK_CORE", "Authentik_Core"), choices named after their members ("Forward Single", "Mode
# All"); environment variables (AUTHENTIK_WEB__BASE_URL) and data
# ("static, totp, webauthn") are fine.
GENERATED = re.compile(r"[Pp]olicys|POLICYS|\b[Oo] auth2|\bLdap\b|\bRadius\b|\b[Ww]eb authn|\bTotp\b|totp (?:stage|device)|"
                       rf"\bauthentik_{APPS}\b|\bAuthentik_|\bAUTHENTIK_(?:CORE|FLOWS|EVENTS|POLICIES|OUTPOSTS|ADMIN|CRYPTO|"
                       r"BLUEPRINTS|PROVIDERS_\w+)\b|\b[Ss]ystem settings\b|"
                       # choices labelled from their member names ("FORWARD_SINGLE" -> "Forward Single")
                       r"\bForward (?:Single|Domain)\b|\bMode (?:All|Any)\b|\bHashed User Id\b|\bUser (?:Id|Uuid|Upn)\b|"
                       r"\bPer Provider\b|Unrenollment|\bMessage Continue\b|\bRestart With Context\b|"
                       r"\bRequire (?:Authenticated|Unauthenticated|Superuser|Redirect)\b|"
                       # field labels made from field names ("meta_launch_url" -> "Meta launch url")
                       r"\bMeta (?:launch url|description|publisher|icon)\b|\bClient id\b|\b[Rr]edirect uris\b|"
                       r"\bSub mode\b|\b[Bb]ase dn\b|\b(?:Ip|Uuid|Sid|Tls|Mfa|Uid|Gid|Rp|Ssl|Webauthn)\b|\b(?:[Ll]ast|[Cc]heck) ip\b|"
                       r"\b[Cc]redential id\b|\bLast t\b|\bRe evaluate\b")



def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def pages() -> list[str]:
    urls = [reverse("admin:index"), reverse("admin:application_wizard")]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        urls.append(reverse("admin:app_list", kwargs={"app_label": meta.app_label}))
    return sorted(set(urls))


def test_every_registered_model_has_a_place_in_authentiks_menus():
    placed = {key for _name, members in SECTIONS for key in members}
    registered = {(m._meta.app_label, m.__name__) for m in admin.site._registry}
    assert registered - placed == set()


def test_no_admin_page_shows_a_generated_name_or_a_raw_app_label(admin_client):
    index = admin_client.get(reverse("admin:index")).content.decode()
    for section in ("Applications", "Events", "Customisation", "Directory", "System"):
        assert f">{section}<" in index
    assert "Other" not in visible_text(index)
    for name in ("OAuth2/OpenID Providers", "LDAP Providers", "Password Policies", "RADIUS Providers", "Outposts"):
        assert name in index
    bad = []
    for url in pages():
        response = admin_client.get(url, follow=True)  # the settings' list goes to its one object
        if response.status_code == 403:  # no add page for this model (e.g. events are recorded, not added)
            continue
        assert response.status_code == 200, (url, response.status_code)
        found = GENERATED.findall(visible_text(response.content.decode()))
        if found:
            bad.append((url, sorted(set(found))))
    assert bad == []


def test_no_row_is_named_by_its_class_and_number(admin_client):
    """A row shows as what it is ("TOTP Device (root)"), never Django's "TOTPDevice object (1)": in lists,
    titles, breadcrumbs and a user's inline devices. One row of every registered model that has none yet."""
    from core.accounts.models import AuthenticatedSession, User
    from core.flows.models import Prompt, StaticDevice, TOTPDevice, WebAuthnDevice
    from core.policies.models import Reputation

    root = User.objects.get(username="root")
    TOTPDevice.objects.create(user=root, key="JBSWY3DPEHPK3PXP", confirmed=True)
    StaticDevice.objects.create(user=root, confirmed=True)
    WebAuthnDevice.objects.create(user=root, credential_id="cred", public_key="key", rp_id="localhost")
    AuthenticatedSession.objects.get_or_create(user=root, defaults={"session_key": "k" * 32, "last_ip": "192.0.2.1"})
    Prompt.objects.create(name="default-prompt-username", field_key="username")
    Reputation.objects.create(identifier="root", ip="192.0.2.1", score=-1)
    generated = re.compile(r"\b\w+ object \(")
    bad = []
    for model in admin.site._registry:
        meta = model._meta
        urls = [reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")]
        urls += [reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[pk])
                 for pk in model.objects.values_list("pk", flat=True)[:5]]
        for url in urls:
            response = admin_client.get(url, follow=True)
            found = generated.findall(visible_text(response.content.decode()))
            if found:
                bad.append((url, found))
    assert bad == []


def breadcrumbs(html: str) -> list[tuple[str, str]]:
    """The (href, text) of each link in the page's breadcrumbs."""
    found = re.search(r'<div class="breadcrumbs">(.*?)</div>', html, re.S)
    assert found, "the page has no breadcrumbs"
    return [(href, text.strip()) for href, text in re.findall(r'<a href="([^"]*)">([^<]*)</a>', found.group(1))]


def test_breadcrumbs_name_the_menu_the_model_sits_in(admin_client):
    """Home › Applications › OAuth2/OpenID Providers, not Django's app name ("Providers_Oauth2", "Outposts ›
    Outposts"); the menu links to its place on the index."""
    from core.accounts.models import User

    sections = {key: name for name, members in SECTIONS for key in members}
    index = admin_client.get(reverse("admin:index")).content.decode()
    for name, _members in SECTIONS:
        assert f'<div id="{name.lower()}">' in index  # the anchor the breadcrumbs link to
    bad = []
    for model in admin.site._registry:
        meta = model._meta
        section = sections[(meta.app_label, model.__name__)]
        for url in (reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
                    reverse(f"admin:{meta.app_label}_{meta.model_name}_add")):
            response = admin_client.get(url, follow=True)
            if response.status_code == 403:
                continue
            crumbs = breadcrumbs(response.content.decode())
            if crumbs[:2] != [(reverse("admin:index"), "Home"), (f"{reverse('admin:index')}#{section.lower()}", section)]:
                bad.append((url, crumbs))
    root = User.objects.get(username="root")
    for url in (reverse("admin:authentik_core_user_change", args=[root.pk]),
                reverse("admin:authentik_core_user_delete", args=[root.pk]),
                reverse("admin:authentik_core_user_history", args=[root.pk]),
                reverse("admin:authentik_core_user_enroll", args=[root.pk]),
                reverse("admin:authentik_core_user_set_password", args=[root.pk]),
                reverse("admin:authentik_core_user_import"), reverse("admin:application_wizard")):
        page = admin_client.get(url).content.decode()
        crumbs = breadcrumbs(page)
        if crumbs[1][1] not in ("Directory", "Applications") or GENERATED.findall(visible_text(page)):
            bad.append((url, crumbs, GENERATED.findall(visible_text(page))))
    assert bad == []
