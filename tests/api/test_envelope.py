"""authentik's pagination envelope and error bodies."""

import pytest

from core.accounts.models import Group

pytestmark = pytest.mark.django_db


def test_pagination_shape(admin):
    for i in range(25):
        Group.objects.create(name=f"g{i:02}")
    body = admin.get("/api/v3/core/groups/?page=1&page_size=10").json()
    assert set(body) == {"pagination", "results", "autocomplete"}
    assert body["pagination"] == {"next": 2, "previous": 0, "count": 26, "current": 1, "total_pages": 3,
                                  "start_index": 1, "end_index": 10}
    assert len(body["results"]) == 10
    last = admin.get("/api/v3/core/groups/?page=3&page_size=10").json()["pagination"]
    assert last["next"] == 0 and last["previous"] == 2 and last["end_index"] == 26


def test_page_size_capped_at_1000(admin):
    body = admin.get("/api/v3/core/groups/?page_size=5000").json()
    assert body["pagination"]["count"] == 1 and body["pagination"]["next"] == 0


def test_page_beyond_end_is_404_with_detail(admin):
    resp = admin.get("/api/v3/core/groups/?page=99")
    assert resp.status_code == 404 and "detail" in resp.json()


def test_validation_error_names_the_field(admin):
    resp = admin.post("/api/v3/core/groups/", {"name": "x", "attributes": [1, 2]}, format="json")
    assert resp.status_code == 400 and "attributes" in resp.json()
    resp = admin.post("/api/v3/core/groups/", {}, format="json")
    assert resp.status_code == 400 and resp.json() == {"name": ["This field is required."]}


def test_unique_conflict_names_the_field(admin):
    Group.objects.create(name="dup")
    resp = admin.post("/api/v3/core/groups/", {"name": "dup"}, format="json")
    assert resp.status_code == 400 and "name" in resp.json()


def test_not_found_is_detail(admin):
    resp = admin.get("/api/v3/core/applications/nope/")
    assert resp.status_code == 404 and set(resp.json()) == {"detail"}


def test_search_and_ordering(admin):
    for name in ("beta", "alpha", "gamma"):
        Group.objects.create(name=name)
    names = [g["name"] for g in admin.get("/api/v3/core/groups/?ordering=-name").json()["results"]]
    assert names == sorted(names, reverse=True)
    found = admin.get("/api/v3/core/groups/?search=amm").json()["results"]
    assert [g["name"] for g in found] == ["gamma"]
