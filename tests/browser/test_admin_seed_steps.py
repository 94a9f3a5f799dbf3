"""Issue 12 "Done when": every admin step the seeds give, done by clicking in /if/admin/ as the seeds word it,
in headless Chromium against a real ``ak server`` (the admin signs in through the flow login first):

1. Applications -> Providers -> Create -> OAuth2/OpenID Provider for Grafana (seed 001), then Applications ->
   Create; the Client ID and Secret read off the page get tokens from the token endpoint.
2. Applications -> Create with wizard -> Forward auth (single application) on the embedded outpost (seed 004);
   a browser through the real nginx (configs/nginx) is sent to the login and then reaches the upstream.
3. Outposts -> edit the embedded outpost -> move the application's provider to the right -> Save (seeds 002,
   004); the embedded outpost then serves it.
4. Outposts -> Create (Proxy) -> View deployment info -> Show token (seed 004); a standalone ``ak outpost
   proxy`` started with the host and token copied from the page connects and serves the provider.
5. Directory -> Users -> Create, Groups -> Create, Users -> Import (CSV); Customisation -> Policies -> Password
   Policy; User settings -> MFA Devices -> Enroll TOTP, and Directory -> Users -> a user -> Enroll -> TOTP by
   the admin (seed 001, the code computed from the secret on the page); System -> Settings: the public (base)
   URL, then seen in use.

With GATEHOUSE_SCREENSHOTS=<dir> (relative to the checkout, e.g. docs/admin) the main admin pages are saved there
as 1280x800 PNGs (the README's "The admin" shows them).
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pyotp
import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import ADMIN_PASSWORD, ROOT
from tests.browser.flow import WAIT_MS, on_path, sign_in
from tests.e2e.support.proxies import start_proxy
from tests.e2e.support.stack import Stack, until
from tests.e2e.support.upstream import start_upstream
from tests.support.outpost import OutpostProcess

VIEWPORT = {"width": 1280, "height": 800}  # the admin on a desktop screen (tests/browser/conftest.py ``page``)
ADMIN = "/if/admin/"
EMBEDDED = "authentik Embedded Outpost"
AUTHORIZATION_FLOW = "default-provider-authorization-implicit-consent"
GRAFANA = "https://grafana.antoineglacet.com"  # seed 001's Grafana
GRAFANA_REDIRECT = GRAFANA + "/login/generic_oauth"
SCOPES = ("openid", "email", "profile")
DEFAULT_CERTIFICATE = "authentik Self-signed Certificate"  # authentik's default certificate's name
# Grafana is not here: the browser is told its name does not resolve (never asking a DNS server), and the test
# reads the code from the request Chromium tried to make.
CHROMIUM_EXTRA_ARGS = ("--host-resolver-rules=MAP grafana.antoineglacet.com ~NOTFOUND",)
SERVED_WITHIN = 10.0  # an admin change reaches the outpost (TRIGGER_UPDATE + refetch); normally < 1 s
SHOTS = os.environ.get("GATEHOUSE_SCREENSHOTS", "")


# --- helpers -----------------------------------------------------------------------------------


def shot(page, name: str) -> None:
    """With GATEHOUSE_SCREENSHOTS set, the visible part of the page (1280x800) as <dir>/<name>.png."""
    if not SHOTS:
        return
    target = ROOT / SHOTS
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"))


def follow(page, link) -> None:
    """Click a link and wait for the page it opens (a check right after must not see the old page)."""
    with page.expect_navigation():
        link.click()


def menu(page, base: str, section: str, item: str) -> None:
    """Open the admin's index and click ``item`` in the ``section`` menu (e.g. Applications -> Providers)."""
    page.goto(base + ADMIN)
    follow(page, page.locator(f"#content-main .app-{section.lower()} tr").get_by_role("link", name=item, exact=True))


def click(page, text: str) -> None:
    follow(page, page.get_by_role("link", name=text, exact=True))


def open_row(page, text: str) -> None:
    """Open the object named ``text`` from a list (not the link in the "added successfully" message)."""
    follow(page, page.locator("#result_list").get_by_role("link", name=text, exact=True))


def save(page) -> str:
    """Press "Save"; the admin's confirmation (a form error fails the test with the errors shown)."""
    with page.expect_navigation():
        page.click("input[name=_save]")
    errors = page.locator(".errornote, .errorlist").all_inner_texts()
    assert not errors, f"the form was refused at {page.url}: {errors}"
    return page.inner_text("ul.messagelist li.success")


def move_right(page, field: str, label: str) -> None:
    """The two-column picker (Django's filter_horizontal): select ``label`` on the left, press the arrow."""
    page.select_option(f"#id_{field}_from", label=label)
    page.click(f"#id_{field}_add")  # the "Choose" arrow
    assert label in page.locator(f"#id_{field}_to option").all_inner_texts()


def option_labels(page, select: str, contains: tuple[str, ...]) -> list[str]:
    """The options of ``select`` whose label contains one of ``contains`` (as a person picks them)."""
    labels = page.locator(f"{select} option").all_inner_texts()
    return [label for label in labels if any(f"'{c}'" in label for c in contains)]


def sign_in_admin(page, base: str) -> None:
    sign_in(page, base, "akadmin", ADMIN_PASSWORD, start=ADMIN)
    on_path(page, ADMIN)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(core, api) -> Stack:
    """The e2e suite's view of ``ak server`` with its embedded outpost (``served``/``wait_served``, logs)."""
    outpost = api.first("/outposts/instances/", managed="goauthentik.io/outposts/embedded")
    return Stack(core, api, "memory", outpost["pk"])


@pytest.fixture(scope="module")
def upstream():
    server = start_upstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nginx(core, upstream, tmp_path_factory):
    """configs/nginx in front of the core's embedded outpost; the app is http://app.localhost:<port> (Chromium
    resolves *.localhost to the loopback address by itself)."""
    proxy = start_proxy("nginx", tmp_path_factory.mktemp("nginx"), app_host="app.localhost",
                        outpost=f"127.0.0.1:{core.http_port}", upstream=upstream.address)
    yield proxy
    proxy.stop()


@pytest.fixture
def admin(core, page):
    sign_in_admin(page, core.url)
    return page


# --- the seed steps ----------------------------------------------------------------------------


def test_grafana_oauth2_provider_and_application(core, admin):
    """Seed 001 "Grafana OAuth Integration": create the provider, note Client ID and Secret, create the
    application; Grafana's authorization code login then works with what was read off the page."""
    page, base = admin, core.url
    shot(page, "index")
    menu(page, base, "Applications", "Providers")
    click(page, "Add Provider")
    click(page, "OAuth2/OpenID Provider")  # the kind
    page.fill("#id_name", "grafana-oauth")
    page.select_option("#id_authorization_flow", label=AUTHORIZATION_FLOW)
    page.select_option("#id_property_mappings", label=option_labels(page, "#id_property_mappings", SCOPES))
    page.select_option("#id_client_type", label="Confidential")
    page.fill("#id_redirect_uris", GRAFANA_REDIRECT)  # as the seed writes it: the URI itself, one per line
    shot(page, "oauth2-provider-form")
    # seed 002 "Signing Key: pick the default certificate": listed on a fresh install, and preselected
    assert page.locator("#id_signing_key option:checked").inner_text() == DEFAULT_CERTIFICATE
    page.select_option("#id_signing_key", label=DEFAULT_CERTIFICATE)
    page.locator("#id_signing_key").scroll_into_view_if_needed()
    shot(page, "oauth2-provider-signing-key")
    assert "grafana-oauth" in save(page)
    menu(page, base, "Applications", "Providers")
    open_row(page, "grafana-oauth")
    assert page.input_value("#id_redirect_uris") == GRAFANA_REDIRECT  # shown back as typed
    client_id, client_secret = page.input_value("#id_client_id"), page.input_value("#id_client_secret")
    assert len(client_id) >= 20 and len(client_secret) >= 40, (client_id, client_secret)

    menu(page, base, "Applications", "Applications")
    click(page, "Add Application")
    page.locator("#id_name").press_sequentially("Grafana")  # typed: the slug follows each key
    assert page.input_value("#id_slug") == "grafana"  # filled in from the name, as authentik's form does
    page.select_option("#id_provider", label="grafana-oauth")
    page.fill("#id_meta_launch_url", GRAFANA)
    assert "Grafana" in save(page)
    shot(page, "applications")

    # Grafana's side: the discovery document for the slug, then a login (the admin is signed in) whose code
    # the Client ID and Secret from the page exchange for tokens.
    discovery = httpx.get(f"{base}/application/o/grafana/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == f"{base}/application/o/grafana/", discovery
    codes: list[dict] = []
    page.on("request", lambda request: codes.append(parse_qs(urlsplit(request.url).query))
            if request.url.startswith(GRAFANA_REDIRECT) else None)
    with pytest.raises(PlaywrightError, match="ERR_NAME_NOT_RESOLVED"):
        page.goto(discovery["authorization_endpoint"] + "?" + urlencode({
            "client_id": client_id, "redirect_uri": GRAFANA_REDIRECT, "response_type": "code",
            "scope": " ".join(SCOPES), "state": "grafana-state"}))
    assert codes and codes[-1].get("state") == ["grafana-state"], codes
    code = codes[-1]["code"][0]
    token = {"grant_type": "authorization_code", "code": code, "redirect_uri": GRAFANA_REDIRECT}
    wrong = httpx.post(discovery["token_endpoint"], data=token, auth=(client_id, client_secret + "x"), timeout=10)
    assert wrong.status_code == 401, wrong.text  # the secret matters (and a refused try leaves the code usable)
    answer = httpx.post(discovery["token_endpoint"], data=token, auth=(client_id, client_secret), timeout=10)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens.get("id_token") and tokens.get("access_token"), tokens
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == "RS256"  # signed with the default certificate
    userinfo = httpx.get(discovery["userinfo_endpoint"], timeout=10,
                         headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert userinfo.get("preferred_username") == "akadmin", userinfo


def test_wizard_forward_auth_application_through_nginx(core, admin, embedded, nginx, chromium):
    """Seed 004 "Protecting an App via Reverse Proxy": Applications -> Create with wizard -> Forward auth
    (single application) served by the embedded outpost; then nginx sends a browser to the login, and after it
    to the application."""
    page, base = admin, core.url
    menu(page, base, "Applications", "Applications")
    click(page, "Create with wizard")
    page.fill("#id_name", "Dockge")
    page.fill("#id_slug", "dockge")
    page.select_option("#id_kind", label="Proxy: forward auth (single application)")
    page.fill("#id_external_host", nginx.external_url)
    assert page.locator("#id_outpost option:checked").inner_text() == EMBEDDED  # preselected
    shot(page, "wizard")
    page.click("input[type=submit][value=Create]")
    page.wait_for_selector("#created")
    snippets = page.locator("pre.snippet").all_inner_texts()
    assert any(f"server_name {nginx.app_host};" in s for s in snippets), snippets
    assert any(f"Host(`{nginx.app_host}`)" in s for s in snippets), snippets
    shot(page, "wizard-result")
    embedded.wait_served(nginx.external_url)

    visitor = chromium.new_context(viewport=VIEWPORT)
    try:
        other = visitor.new_page()
        other.set_default_timeout(WAIT_MS)
        sign_in(other, nginx.external_url, "akadmin", ADMIN_PASSWORD, start="/private?tab=1")
        other.wait_for_url(f"{nginx.external_url}/private?tab=1", timeout=WAIT_MS)
        seen = json.loads(other.inner_text("body"))
        assert seen["path"] == "/private" and seen["query"] == "tab=1", seen
        headers = {name.lower(): value for name, value in seen["headers"]}
        assert headers.get("x-authentik-username") == "akadmin", headers
        assert headers.get("x-authentik-meta-app") == "dockge", headers
    finally:
        visitor.close()


def test_embedded_outpost_picker_serves_the_application(core, admin, embedded):
    """Seeds 002/004: create a Proxy Provider (forward auth, single application) and its application, then
    Outposts -> edit the embedded outpost -> move it to the right -> Save."""
    page, base = admin, core.url
    external = "http://whoami.localhost:8080"
    menu(page, base, "Applications", "Proxy Providers")
    click(page, "Add Proxy Provider")
    page.fill("#id_name", "whoami")
    page.select_option("#id_authorization_flow", label=AUTHORIZATION_FLOW)
    page.select_option("#id_mode", label="Forward auth (single application)")
    page.fill("#id_external_host", external)
    assert "whoami" in save(page)
    menu(page, base, "Applications", "Applications")
    click(page, "Add Application")
    page.fill("#id_name", "whoami")
    page.select_option("#id_provider", label="whoami")
    save(page)
    assert not embedded.served(external)  # not on an outpost yet

    menu(page, base, "Applications", "Outposts")
    open_row(page, EMBEDDED)
    move_right(page, "providers", "whoami")
    shot(page, "outpost-edit")
    assert EMBEDDED in save(page)
    until(lambda: embedded.served(external), SERVED_WITHIN, f"the embedded outpost serves {external}",
          embedded.logs)


def test_standalone_outpost_token_from_deployment_info(core, admin, api, tmp_path):
    """Seed 004 "Protecting a Remote Server Service": Outposts -> Create (Proxy, the application's provider)
    -> View deployment info -> Show token; ``ak outpost proxy`` with what the page shows connects."""
    page, base = admin, core.url
    external = "http://remote.localhost:8080"
    flow = api.first("/flows/instances/", slug=AUTHORIZATION_FLOW)["pk"]
    provider = api("POST", "/providers/proxy/", json={"name": "remote-app", "mode": "forward_single",
                                                      "external_host": external, "authorization_flow": flow})
    api("POST", "/core/applications/", json={"name": "Remote app", "slug": "remote-app", "provider": provider["pk"]})

    menu(page, base, "Applications", "Outposts")
    click(page, "Add Outpost")
    page.fill("#id_name", "remote-outpost")
    page.select_option("#id_type", label="Proxy")
    move_right(page, "providers", "remote-app")
    assert "remote-outpost" in save(page)
    row = page.locator("#result_list tr", has_text="remote-outpost")
    follow(page, row.get_by_role("link", name="View deployment info"))
    assert page.locator("#authentik-token").count() == 0  # shown on demand only
    with page.expect_navigation():
        page.click("input[type=submit][value='Show token']")
    host, token = page.inner_text("#authentik-host"), page.inner_text("#authentik-token")
    assert token and token in page.inner_text("#compose") and "<token>" not in token
    if SHOTS:  # the README's picture must not carry a real token, even a test one
        page.evaluate("t => document.querySelectorAll('#authentik-token, #compose').forEach("
                      "e => e.textContent = e.textContent.replaceAll(t, '<the outpost token>'))", token)
        shot(page, "outpost-deployment-info")

    outpost = OutpostProcess(tmp_path / "outpost", host, token)
    outpost.start()
    try:
        outpost.wait_connected()
        answer = httpx.get(outpost.url + "/outpost.goauthentik.io/auth/nginx", timeout=5, headers={
            "Host": urlsplit(external).netloc, "X-Original-URL": external + "/"})
        assert answer.status_code == 401, (answer.status_code, answer.text[:300])  # known provider, no session

        def connected() -> bool:
            page.goto(base + ADMIN + "authentik_outposts/outpost/")
            cells = page.locator("#result_list tr", has_text="remote-outpost").locator("td").all_inner_texts()
            return "1" in cells
        until(connected, SERVED_WITHIN, "the outposts list shows one connected instance", outpost.tail)
        shot(page, "outposts")
    finally:
        outpost.stop()


def test_directory_users_groups_import_password_policy(core, admin, api):
    """Seed 001 "Creating Users", "Managing Groups", "Password Policies"."""
    page, base = admin, core.url
    menu(page, base, "Directory", "Users")
    click(page, "Add User")
    page.fill("#id_username", "jellyfin")
    page.fill("#id_name", "Jelly Fin")
    page.fill("#id_email", "jellyfin@example.test")
    assert "jellyfin" in save(page)

    menu(page, base, "Directory", "Groups")
    click(page, "Add Group")
    page.fill("#id_name", "Media Admins")
    assert "Media Admins" in save(page)
    menu(page, base, "Directory", "Users")
    open_row(page, "jellyfin")
    move_right(page, "groups", "Media Admins")
    save(page)
    user = api.one("/core/users/", username="jellyfin")
    assert [g["name"] for g in user["groups_obj"]] == ["Media Admins"], user

    menu(page, base, "Directory", "Users")
    click(page, "Import CSV")
    csv = "username,email,name,groups\nalice,alice@example.test,Alice Liddell,Media Admins\nbob,bob@example.test,Bob,\n"
    page.set_input_files("#id_file", files=[{"name": "users.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
    with page.expect_navigation():
        page.click("input[type=submit][value=Import]")
    assert "2 created" in page.inner_text("ul.messagelist li.success")
    listed = page.locator("#result_list th.field-username").all_inner_texts()
    assert {"alice", "bob", "jellyfin"} <= set(listed), listed
    shot(page, "users")
    alice = api.one("/core/users/", username="alice")
    assert [g["name"] for g in alice["groups_obj"]] == ["Media Admins"], alice

    menu(page, base, "Customisation", "Password Policies")
    click(page, "Add Password Policy")
    page.fill("#id_name", "strong-passwords")
    page.fill("#id_length_min", "12")
    page.fill("#id_amount_digits", "1")
    page.fill("#id_amount_uppercase", "1")
    assert "strong-passwords" in save(page)
    policy = api.one("/policies/password/", name="strong-passwords")
    assert (policy["length_min"], policy["amount_digits"], policy["amount_uppercase"]) == (12, 1, 1), policy


def test_user_enrolls_totp_and_the_admin_sees_the_device(core, admin, chromium):
    """Seed 001 "MFA": the admin creates the user and sets a password (Directory -> Users -> the user -> Set
    password); the user enrolls TOTP (User settings -> MFA Devices -> Enroll) with a code from the secret on the
    page; the admin sees the device on the user's page."""
    page, base = admin, core.url
    menu(page, base, "Directory", "Users")
    click(page, "Add User")
    page.fill("#id_username", "mfa-user")
    page.fill("#id_name", "Mfa User")
    save(page)
    open_row(page, "mfa-user")
    click(page, "Set password")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.fill("#id_repeat", ADMIN_PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert "mfa-user" in page.inner_text("ul.messagelist li.success")

    person = chromium.new_context(viewport=VIEWPORT)
    try:
        user = person.new_page()
        user.set_default_timeout(WAIT_MS)
        sign_in(user, base, "mfa-user", ADMIN_PASSWORD)
        on_path(user, "/if/user/")
        user.locator("#mfa").get_by_role("link", name="Enroll TOTP").click()
        user.wait_for_selector("#totp-secret")
        secret = user.inner_text("#totp-secret").replace(" ", "")
        user.fill("#code", pyotp.TOTP(secret).now())
        user.click("form#flow-form button[type=submit]")
        on_path(user, "/if/user/")
        assert user.locator("#mfa tr[data-kind=totp]").count() == 1
    finally:
        person.close()

    menu(page, base, "Directory", "Users")
    open_row(page, "mfa-user")
    devices = page.locator("#totp_devices-group")
    assert devices.locator("tr.has_original").count() == 1, devices.inner_text()
    assert "TOTP Device (mfa-user)" in devices.inner_text()  # the device, not "TOTPDevice object (1)"


def test_admin_enrolls_totp_for_a_user(core, admin, api, chromium):
    """Seed 001 "MFA, As admin: Directory -> Users -> Select user -> Enroll; Choose: TOTP": the secret is shown
    once, the admin types the code from the user's app (computed here from the secret on the page), and the
    user then signs in with the app's codes."""
    page, base = admin, core.url
    api.user("enrolled-by-admin", ADMIN_PASSWORD)
    menu(page, base, "Directory", "Users")
    open_row(page, "enrolled-by-admin")
    click(page, "Enroll")
    assert "/if/flow/default-authenticator-webauthn-setup/" in page.inner_text("#webauthn-link")
    shot(page, "user-enroll")
    with page.expect_navigation():
        page.get_by_role("button", name="Enroll TOTP").click()
    secret = page.inner_text("#totp-secret").replace(" ", "")
    assert page.locator("#totp-qr svg").count() == 1
    shot(page, "user-enroll-totp")
    page.fill("#id_code", pyotp.TOTP(secret).now())
    with page.expect_navigation():
        page.click("#totp-confirm input[type=submit]")
    assert "enrolled and confirmed" in page.inner_text("ul.messagelist li.success")
    devices = page.locator("#totp_devices-group")
    assert devices.locator("tr.has_original").count() == 1, devices.inner_text()

    person = chromium.new_context(viewport=VIEWPORT)
    try:
        user = person.new_page()
        user.set_default_timeout(WAIT_MS)
        # the next time step's code: the one the admin typed is used up (codes are single-use)
        sign_in(user, base, "enrolled-by-admin", ADMIN_PASSWORD,
                code_for=lambda: pyotp.TOTP(secret).at(time.time() + 30))
        on_path(user, "/if/user/")
    finally:
        person.close()


def test_settings_public_url_is_used(core, admin, api):
    """Seed 003 "Set the public URL. System -> Configuration": the Base URL, shown as in use, and then in the
    links the core makes (a recovery link, as in the mails). Last in this module: it changes the core's URLs
    (put back at the end)."""
    page, base = admin, core.url
    public = "https://auth.example.test"
    api.user("forgetful", ADMIN_PASSWORD)
    menu(page, base, "System", "Settings")
    page.fill("#id_base_url", public)
    save(page)
    menu(page, base, "System", "Settings")
    assert f"{public} (from" in page.inner_text(".field-base_url_in_use")
    shot(page, "settings")
    try:
        menu(page, base, "Directory", "Users")
        open_row(page, "forgetful")
        click(page, "Create recovery link")
        with page.expect_navigation():
            page.click("input[type=submit]")
        assert f"{public}/recovery/" in page.inner_text("#content"), page.inner_text("#content")
    finally:
        menu(page, base, "System", "Settings")
        page.fill("#id_base_url", "")
        save(page)
