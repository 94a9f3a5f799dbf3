"""The embedded outpost (a proxy outpost) may also serve RADIUS providers (ak server answers them); any other
proxy outpost still serves only proxy providers."""

from core.outposts.models import EMBEDDED_OUTPOST_MANAGED, Outpost
from core.providers.radius.models import RadiusProvider


def test_radius_provider_only_on_the_embedded_proxy_outpost(admin, db):
    radius = RadiusProvider.objects.create(name="wifi", shared_secret="s")
    embedded = Outpost.objects.create(name="authentik Embedded Outpost", type="proxy",
                                      managed=EMBEDDED_OUTPOST_MANAGED)
    other = Outpost.objects.create(name="proxy", type="proxy")
    ok = admin.patch(f"/api/v3/outposts/instances/{embedded.pk}/", {"providers": [radius.pk]}, format="json")
    assert ok.status_code == 200, ok.content
    refused = admin.patch(f"/api/v3/outposts/instances/{other.pk}/", {"providers": [radius.pk]}, format="json")
    assert refused.status_code == 400 and "radiusprovider" in str(refused.json()["providers"])
