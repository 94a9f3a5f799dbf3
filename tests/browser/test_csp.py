"""Issue 8 item 11: every kind of page the core renders carries the Content-Security-Policy, and headless
Chromium finds nothing on them that the policy blocks (the ``page`` fixture fails a test on any blocked
script, style or image; the WebAuthn journey in test_journeys.py covers the flow page's script).

THREATS "Script launch URL": a launch URL saved behind the API's back as ``JavaScript:...`` is not a link in
the portal, and clicking around runs no script.
"""

from __future__ import annotations

import sqlite3

from tests.browser.conftest import ADMIN_PASSWORD, BOOTSTRAP_TOKEN
from tests.browser.flow import on_path, sign_in
from tests.support.api import Api

PAGES = {
    "portal": "/if/user/",
    "admin index": "/if/admin/",
    "admin change list": "/if/admin/authentik_core/user/",
    "admin form": "/if/admin/authentik_core/application/add/",
    "admin system settings": "/if/admin/authentik_admin/systemsettings/",
    "admin outpost form (YAML settings, provider picker)": "/if/admin/authentik_outposts/outpost/add/",
    "admin group form (members picker)": "/if/admin/authentik_core/group/add/",
    "admin token form": "/if/admin/authentik_core/token/add/",
    "admin logs": "/if/admin/authentik_events/event/",
    "admin SMTP test mail": "/if/admin/authentik_admin/systemsettings/test-mail/",
    "admin certificates": "/if/admin/authentik_crypto/certificatekeypair/",
    "REST API, browsable": "/api/v3/core/users/",
    "OIDC device page": "/device",
}


def test_each_kind_of_page_has_the_policy_and_nothing_is_blocked(core, page):
    headers = {}
    page.on("response", lambda r: headers.setdefault(r.url, r.headers.get("content-security-policy")))
    page.goto(core.url + "/if/flow/default-authentication-flow/")
    assert "script-src 'self'" in headers[page.url] and "unsafe-inline" not in headers[page.url]
    sign_in(page, core.url, "akadmin", ADMIN_PASSWORD)
    on_path(page, "/if/user/")
    for kind, path in PAGES.items():
        response = page.goto(core.url + path)
        assert response.status == 200, (kind, response.status)
        policy = response.headers.get("content-security-policy", "")
        assert policy.startswith("default-src 'self'"), (kind, policy)
        assert "script-src 'self';" in policy, (kind, policy)
    # The browsable API's own scripts (static files) still load and run under the policy.
    page.goto(core.url + "/api/v3/core/users/")
    assert page.evaluate("typeof window.jQuery === 'function' && typeof window.jQuery.fn.dropdown === 'function'")


def write_launch_url(core, slug: str, url: str) -> None:
    sql = "UPDATE authentik_core_application SET meta_launch_url = {0} WHERE slug = {0}"
    if core.database:  # PostgreSQL (tests/support/server.py made this database for the core)
        import psycopg

        env = core.env
        with psycopg.connect(host=env["AUTHENTIK_POSTGRESQL__HOST"], dbname=core.database,
                             user=env.get("AUTHENTIK_POSTGRESQL__USER", "authentik"),
                             password=env.get("AUTHENTIK_POSTGRESQL__PASSWORD") or None,
                             port=int(env.get("AUTHENTIK_POSTGRESQL__PORT") or 5432)) as db:
            db.execute(sql.format("%s"), (url, slug))
        return
    with sqlite3.connect(core.data_dir / "gatehouse.sqlite3") as db:
        db.execute(sql.format("?"), (url, slug))


def test_a_script_launch_url_saved_behind_the_apis_back_is_not_a_link(core, page):
    api = Api(core.url, BOOTSTRAP_TOKEN)
    try:
        api("POST", "/core/applications/", json={"name": "Wiki", "slug": "wiki",
                                                  "meta_launch_url": "https://wiki.example.test/"})
        refused = api.client.post("/core/applications/", json={"name": "Evil", "slug": "evil",
                                                               "meta_launch_url": "JavaScript:alert(1)"})
        assert refused.status_code == 400 and "https://" in refused.text
    finally:
        api.close()
    # As if written before the check existed: straight into the database.
    write_launch_url(core, "wiki", "\x01 JavaScript:document.title='pwned'")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, core.url, "akadmin", ADMIN_PASSWORD)
    on_path(page, "/if/user/")
    assert page.locator("a[data-slug='wiki']").count() == 0
    assert "javascript" not in page.content().lower()
    assert page.title() != "pwned" and dialogs == []
