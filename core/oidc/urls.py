"""OAuth2 / OpenID Connect URLs (full paths; reference §6). Fixed paths come before ``<slug>``."""

from django.urls import path, re_path

from core.oidc.views import authorize, device, end_session, provider, token, userinfo

urlpatterns = [
    path("application/o/authorize/", authorize.authorize, name="oauth2-authorize"),
    path("application/o/token/", token.token, name="oauth2-token"),
    path("application/o/userinfo/", userinfo.userinfo, name="oauth2-userinfo"),
    path("application/o/introspect/", token.introspect, name="oauth2-introspection"),
    path("application/o/revoke/", token.revoke, name="oauth2-revoke"),
    path("application/o/device/", token.device_authorization, name="oauth2-device-authorization"),
    re_path(r"^device/?$", device.device_entry, name="oauth2-device-entry"),
    path("application/o/<slug:slug>/.well-known/openid-configuration", provider.discovery,
         name="oauth2-discovery"),
    path("application/o/<slug:slug>/jwks/", provider.jwks, name="oauth2-jwks"),
    path("application/o/<slug:slug>/end-session/", end_session.end_session, name="oauth2-end-session"),
    path("application/o/<slug:slug>/end-session/confirm/", end_session.end_session_confirm,
         name="oauth2-end-session-confirm"),
    path("application/o/<slug:slug>/", provider.discovery_redirect, name="oauth2-provider-root"),
    path(".well-known/oauth-authorization-server/application/o/<slug:slug>/", provider.discovery,
         name="oauth2-metadata"),
]
