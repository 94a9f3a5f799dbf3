import pytest

from core.accounts.csv_import import import_users
from core.accounts.models import Group, User

pytestmark = pytest.mark.django_db


def test_csv_import_creates_and_updates():
    User.objects.create_user("existing", "old@example.com")
    result = import_users("username,email,name,groups\nalice,alice@example.com,Alice,media|ops\n"
                          "existing,new@example.com,Ex,\n")
    assert result.errors == [] and result.created == ["alice"] and result.updated == ["existing"]
    alice = User.objects.get(username="alice")
    assert {g.name for g in alice.groups.all()} == {"media", "ops"}
    assert not alice.has_usable_password()
    assert User.objects.get(username="existing").email == "new@example.com"


def test_csv_import_is_all_or_nothing_and_names_lines():
    result = import_users("username,email\nbob,bob@example.com\n,x@example.com\ncarol,not-an-email\nbob,b@e.com\n")
    assert not User.objects.filter(username="bob").exists()
    text = "\n".join(result.errors)
    assert "line 3: username is empty" in text
    assert "line 4: email 'not-an-email'" in text
    assert "line 5: username 'bob' appears twice" in text
    assert "username" in import_users("user,email\nx,y\n").errors[0]


def test_admin_pages_and_csv_upload(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    for url in ("/if/admin/", "/if/admin/authentik_core/user/", "/if/admin/authentik_core/user/import/",
                "/if/admin/authentik_events/event/", "/if/admin/authentik_flows/flow/",
                "/if/admin/authentik_outposts/outpost/", "/if/admin/authentik_providers_proxy/proxyprovider/"):
        assert client.get(url).status_code == 200, url
    upload = SimpleUploadedFile("users.csv", b"username,email,name\ndave,dave@example.com,Dave\n", "text/csv")
    resp = client.post("/if/admin/authentik_core/user/import/", {"file": upload})
    assert resp.status_code == 302
    assert User.objects.filter(username="dave").exists()
    assert Group.objects.filter(name="authentik Admins", is_superuser=True).exists()


def test_admin_refuses_non_superuser(client):
    user = User.objects.create_user("plain", password="pw")
    client.force_login(user)
    assert client.get("/if/admin/authentik_core/user/").status_code == 302  # to the admin login
