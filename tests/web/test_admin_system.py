"""Issue 12, System: Settings shows the session duration (set in the environment and per User Login stage) and
sends an SMTP test mail reporting success or the server's error; Certificates show expiry and fingerprints,
never the private key."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from core.events.models import Event
from tests.support.server import free_port
from tests.web.test_admin_dashboard import pem_pair

pytestmark = pytest.mark.django_db
SETTINGS = "/if/admin/authentik_admin/systemsettings/"  # opens the one row
TEST_MAIL = "/if/admin/authentik_admin/systemsettings/test-mail/"
CERTS = "/if/admin/authentik_crypto/certificatekeypair/"


def test_settings_show_the_session_duration_and_where_it_is_set(admin_client, settings):
    from core.flows.models import UserLoginStage

    UserLoginStage.objects.create(name="short-login", session_duration="hours=2")
    page = admin_client.get(SETTINGS, follow=True).content.decode()
    lifetime = settings.CONFIG.session_lifetime
    assert "Session duration" in page and f"{lifetime} s" in page and "AUTHENTIK_SESSION_LIFETIME" in page
    stages = page[page.index('id="login-stages"'):]
    assert "short-login</a>: hours=2" in stages
    assert 'id="smtp-test-mail"' in page


def test_smtp_test_mail_is_sent_and_recorded(admin_client):
    page = admin_client.get(TEST_MAIL).content.decode()
    assert 'value="root@example.com"' in page  # the signed-in admin's address, to change
    response = admin_client.post(TEST_MAIL, {"address": "ops@example.test"}, follow=True)
    assert response.status_code == 200
    assert [m.to for m in mail.outbox] == [["ops@example.test"]]
    assert mail.outbox[0].subject == "Gatehouse test mail"
    assert "A test mail to ops@example.test was handed to" in response.content.decode()
    assert Event.objects.filter(action="email_sent", context__to="ops@example.test").exists()


def test_smtp_test_mail_reports_the_servers_error(admin_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    settings.EMAIL_TIMEOUT = 5
    response = admin_client.post(TEST_MAIL, {"address": "ops@example.test"})
    body = response.content.decode()
    assert response.status_code == 200
    error = re.search(r'<p class="errornote" id="test-mail-error">([^<]+)</p>', body).group(1)
    assert "was not sent" in error and "ConnectionRefusedError" in error and "AUTHENTIK_EMAIL__HOST" in error
    assert not Event.objects.filter(action="email_sent").exists()


def test_smtp_test_mail_refuses_a_bad_address_and_needs_csrf(admin_client):
    response = admin_client.post(TEST_MAIL, {"address": "not an address"})
    assert response.status_code == 200 and "Enter a valid email address" in response.content.decode()
    assert mail.outbox == []
    from core.accounts.models import User

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(User.objects.get(username="root"))
    assert strict.post(TEST_MAIL, {"address": "ops@example.test"}).status_code == 403
    assert mail.outbox == []


def test_certificates_show_expiry_and_fingerprint_never_the_key(admin_client):
    from core.crypto.models import CertificateKeyPair

    cert, key = pem_pair(days=90, name="edge.example.test")
    response = admin_client.post(f"{CERTS}add/", {"name": "edge", "certificate_data": cert, "key_data": key})
    assert response.status_code == 302, response.content.decode()[:3000]
    pair = CertificateKeyPair.objects.get(name="edge")
    assert pair.key_data == key
    listing = admin_client.get(CERTS).content.decode()
    assert "CN=edge.example.test" in listing and " UTC" in listing
    page = admin_client.get(f"{CERTS}{pair.pk}/change/").content.decode()
    assert re.search(r"([0-9a-f]{2}:){31}[0-9a-f]{2}", page)  # the SHA256 fingerprint
    assert "PRIVATE KEY-----\n" not in page and key.splitlines()[1] not in page
    # saved again without a key: the stored key stays
    response = admin_client.post(f"{CERTS}{pair.pk}/change/", {"name": "edge", "certificate_data": cert,
                                                              "key_data": ""})
    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.key_data == key


def test_a_key_that_does_not_match_the_certificate_is_refused(admin_client):
    cert, _key = pem_pair(days=90)
    _cert, other_key = pem_pair(days=90)
    response = admin_client.post(f"{CERTS}add/", {"name": "edge", "certificate_data": cert, "key_data": other_key})
    assert response.status_code == 200
    assert "this private key does not belong to the certificate" in response.content.decode()
    bad = admin_client.post(f"{CERTS}add/", {"name": "edge", "certificate_data": "nonsense", "key_data": ""})
    assert "not a PEM certificate" in bad.content.decode()


def test_a_managed_pair_is_view_only_without_its_key(admin_client):
    from core.crypto.models import CertificateKeyPair

    cert, key = pem_pair(days=90)
    pair = CertificateKeyPair.objects.create(name="signing", certificate_data=cert, key_data=key,
                                             managed="goauthentik.io/crypto/test")
    page = admin_client.get(f"{CERTS}{pair.pk}/change/").content.decode()
    assert key.splitlines()[1] not in page and 'name="_save"' not in page
    assert admin_client.post(f"{CERTS}{pair.pk}/change/", {"name": "x", "certificate_data": cert}).status_code == 403
