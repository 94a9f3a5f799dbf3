"""configs/blueprints/radius.yaml: a RADIUS provider with its outpost, applied twice (nothing changes)."""

from pathlib import Path

import pytest

from core.accounts.models import Application, Group
from core.blueprints.apply import BUILTIN_DIR, apply_file
from core.blueprints.importer import Importer
from core.blueprints.loader import load
from core.blueprints.tags import BlueprintError
from core.outposts.models import Outpost
from core.policies.models import PolicyBinding
from core.providers.radius.models import RadiusProvider

pytestmark = pytest.mark.django_db

BLUEPRINT = Path(__file__).resolve().parents[2] / "configs" / "blueprints" / "radius.yaml"
ENV = {"RADIUS_SHARED_SECRET": "a-long-random-secret", "RADIUS_CLIENT_NETWORKS": "10.1.0.0/16"}


def apply():
    return Importer(load(BLUEPRINT.read_text(), source=str(BLUEPRINT)), env=ENV).apply()


def test_radius_blueprint():
    apply_file(BUILTIN_DIR / "10-flow-default-authentication-flow.yaml")
    result = apply()
    provider = RadiusProvider.objects.get(name="wifi-radius")
    assert provider.shared_secret == "a-long-random-secret" and provider.client_networks == "10.1.0.0/16"
    assert provider.require_message_authenticator and provider.authorization_flow.slug == \
        "default-authentication-flow"
    app = Application.objects.get(slug="wifi")
    assert app.provider_id == provider.pk
    assert PolicyBinding.objects.filter(target=app, group__name="wifi-users").exists()
    outpost = Outpost.objects.get(name="radius")
    assert outpost.type == "radius" and list(outpost.providers.all()) == [provider.provider_ptr]
    vlan = Group.objects.get(name="wifi-vlan-20").attributes["radius_reply_attributes"]
    assert ["Tunnel-Private-Group-Id:1", "20"] in vlan
    assert result.changed
    assert not apply().changed


def test_radius_bind_mode_through_a_blueprint():
    """bind_mode as LDAP's: "direct" (the default) or "cached"; anything else is an error naming the value."""
    apply_file(BUILTIN_DIR / "10-flow-default-authentication-flow.yaml")
    apply()
    assert RadiusProvider.objects.get(name="wifi-radius").bind_mode == "direct"
    cached = BLUEPRINT.read_text().replace("bind_mode: direct", "bind_mode: cached")
    Importer(load(cached, source="cached.yaml"), env=ENV).apply()
    assert RadiusProvider.objects.get(name="wifi-radius").bind_mode == "cached"
    with pytest.raises(BlueprintError, match=r"field 'bind_mode': Value 'sometimes' is not a valid choice"):
        Importer(load(BLUEPRINT.read_text().replace("bind_mode: direct", "bind_mode: sometimes"),
                      source="bad.yaml"), env=ENV).apply()
