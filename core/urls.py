"""URL map. Each app owns its own full paths in its urls module; the order here only matters for
prefixes that overlap (the flow executor under /api/v3/ comes before the REST router)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("core.flows.urls")),
    path("", include("core.oidc.urls")),
    path("api/v3/", include("core.api.urls")),
    path("", include("core.web.urls")),
    path("if/admin/", admin.site.urls),
]
