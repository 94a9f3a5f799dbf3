"""The OpenAPI schema generates, validates, and carries authentik's paths."""

import json

import pytest
import yaml
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from core.api.schema import CUSTOM_SETTINGS

pytestmark = pytest.mark.django_db

PATHS = ["/api/v3/core/users/", "/api/v3/core/users/me/", "/api/v3/core/users/{id}/set_password/",
         "/api/v3/core/tokens/{identifier}/view_key/", "/api/v3/outposts/instances/",
         "/api/v3/outposts/instances/{uuid}/health/", "/api/v3/outposts/proxy/", "/api/v3/outposts/ldap/",
         "/api/v3/outposts/ldap/{id}/check_access/", "/api/v3/outposts/radius/{id}/check_access/",
         "/api/v3/events/events/", "/api/v3/root/config/", "/api/v3/flows/instances/{slug}/",
         "/api/v3/propertymappings/provider/scope/", "/api/v3/stages/all/"]


def test_schema_generates_without_warnings_and_validates():
    GENERATOR_STATS.reset()
    with patched_settings(CUSTOM_SETTINGS):
        schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache
    for path in PATHS:
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["authentik"]["scheme"] == "bearer"
    pagination = schema["components"]["schemas"]["PaginatedUserList"]["properties"]
    assert set(pagination) == {"pagination", "results", "autocomplete"}


def test_schema_endpoint_serves_yaml_and_json():
    client = APIClient()
    resp = client.get("/api/v3/schema/")
    assert resp.status_code == 200
    assert "/api/v3/outposts/proxy/" in yaml.safe_load(resp.content)["paths"]
    resp = client.get("/api/v3/schema/?format=json")
    assert resp.status_code == 200 and json.loads(resp.content)["info"]["title"] == "Gatehouse"
