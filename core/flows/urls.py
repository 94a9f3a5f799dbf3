"""Flow URLs (full paths; core/urls.py includes this module first, before the REST router)."""

from django.urls import path

from core.flows import views

urlpatterns = [
    path("api/v3/flows/executor/<slug:flow_slug>/", views.executor_api, name="flow-executor"),
    path("if/flow/<slug:flow_slug>/", views.flow_page, name="flow-page"),
    path("flows/-/default/authentication/", views.default_authentication, name="flow-default-authentication"),
    path("flows/-/default/invalidation/", views.default_invalidation, name="flow-default-invalidation"),
    path("flows/-/cancel/", views.cancel, name="flow-cancel"),
    path("recovery/use-token/", views.use_recovery_token, name="recovery-use-token"),
]
