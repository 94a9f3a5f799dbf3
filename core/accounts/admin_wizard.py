"""The admin's "Create with wizard" (issue 12 item 2; authentik: Applications -> Create with wizard): one page
that creates an application with its provider (OAuth2/OpenID, Proxy in its three modes, LDAP, RADIUS) through the
REST API's own serializers (so every default and check is the API's: flows, default scope mappings, URL and
network validation), optionally binds a group, assigns proxy/LDAP/RADIUS providers to an outpost (the embedded
one preselected), then shows what to copy: client id and secret with the discovery URL, the Traefik / Caddy /
nginx forward-auth snippets for the host, the LDAP base DN with an ldapsearch line, the RADIUS secret with a
radtest line."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django import forms
from django.db import transaction
from django.shortcuts import render
from rest_framework.exceptions import ValidationError

from core.accounts.models import Application, Group
from core.flows.models import Flow
from core.oidc.admin_forms import RedirectURIsField
from core.outposts.models import EMBEDDED_OUTPOST_MANAGED, Outpost
from core.policies.models import PolicyBinding

KINDS = (("oauth2", "OAuth2/OpenID Provider"), ("forward_single", "Proxy: forward auth (single application)"),
         ("forward_domain", "Proxy: forward auth (domain level)"), ("proxy", "Proxy: reverse proxy"),
         ("ldap", "LDAP Provider"), ("radius", "RADIUS Provider"))
OIDC_SCOPES = ("goauthentik.io/providers/oauth2/scope-openid", "goauthentik.io/providers/oauth2/scope-email",
               "goauthentik.io/providers/oauth2/scope-profile")


class WizardForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=50)
    kind = forms.ChoiceField(choices=KINDS, label="Provider type")
    external_host = forms.URLField(required=False, assume_scheme="https", help_text="Proxy: the URL people open, e.g. https://app.example.com")
    internal_host = forms.URLField(required=False, assume_scheme="https", help_text="Reverse proxy: the application's own URL")
    redirect_uris = RedirectURIsField(help_text="OAuth2: the application's redirect URIs, one per line (start a "
                                                "line with regex: for a pattern)")
    base_dn = forms.CharField(required=False, initial="DC=ldap,DC=goauthentik,DC=io", label="Base DN", help_text="LDAP")
    client_networks = forms.CharField(required=False, initial="0.0.0.0/0,::/0",
                                      help_text="RADIUS: the networks of the devices that may ask")
    group = forms.ModelChoiceField(Group.objects.all(), required=False,
                                   help_text="Only members of this group may use the application (optional)")
    outpost = forms.ModelChoiceField(Outpost.objects.all(), required=False,
                                     help_text="Proxy, LDAP and RADIUS: the outpost that serves it")


def _flow(slug: str) -> str | None:
    found = Flow.objects.filter(slug=slug).values_list("pk", flat=True).first()
    return str(found) if found else None


def provider_data(kind: str, data: dict) -> tuple[type, dict]:
    """The API serializer and the body it gets for the wizard's answers."""
    from core.oidc.api import OAuth2ProviderSerializer
    from core.oidc.keys import default_signing_key
    from core.oidc.models import ScopeMapping
    from core.providers.ldap.api import LDAPProviderSerializer
    from core.providers.proxy.api import ProxyProviderSerializer
    from core.providers.radius.api import RadiusProviderSerializer

    web = {"name": data["name"], "authorization_flow": _flow("default-provider-authorization-implicit-consent"),
           "invalidation_flow": _flow("default-provider-invalidation-flow")}
    login = {"name": data["name"], "authorization_flow": _flow("default-authentication-flow"),
             "invalidation_flow": _flow("default-invalidation-flow")}
    if kind == "oauth2":
        mappings = [str(pk) for pk in ScopeMapping.objects.filter(managed__in=OIDC_SCOPES).values_list("pk", flat=True)]
        return OAuth2ProviderSerializer, {**web, "client_type": "confidential",
                                          "redirect_uris": data.get("redirect_uris") or [],
                                          "property_mappings": mappings,
                                          "signing_key": str(default_signing_key("rsa").pk)}  # authentik's default
    if kind in ("forward_single", "forward_domain", "proxy"):
        body = {**web, "mode": kind, "external_host": data.get("external_host") or ""}
        if kind == "proxy":
            body["internal_host"] = data.get("internal_host") or ""
        if kind == "forward_domain":
            body["cookie_domain"] = (urlsplit(body["external_host"]).hostname or "").partition(".")[2]
        return ProxyProviderSerializer, body
    if kind == "ldap":
        return LDAPProviderSerializer, {**login, "base_dn": data.get("base_dn") or "DC=ldap,DC=goauthentik,DC=io",
                                        "search_full_directory": True}
    return RadiusProviderSerializer, {**login, "client_networks": data.get("client_networks") or "0.0.0.0/0,::/0",
                                      "shared_secret": secrets.token_urlsafe(24)}


def create(data: dict):
    """Provider, application, binding and outpost assignment in one transaction; ValidationError with the API's
    messages (by field) when the answers do not make a valid provider or application."""
    from core.accounts.api import ApplicationSerializer

    serializer_class, body = provider_data(data["kind"], data)
    with transaction.atomic():
        provider_serializer = serializer_class(data=body)
        provider_serializer.is_valid(raise_exception=True)
        provider = provider_serializer.save()
        app_serializer = ApplicationSerializer(data={"name": data["name"], "slug": data["slug"],
                                                     "provider": provider.pk})
        app_serializer.is_valid(raise_exception=True)
        app = app_serializer.save()
        if data.get("group") is not None:
            PolicyBinding.objects.create(target=app, group=data["group"], order=0)
        outpost = data.get("outpost")
        if data["kind"] != "oauth2" and outpost is not None:
            outpost.providers.add(provider)
    return provider, app


def snippets(kind: str, provider, app: Application, core: str) -> dict:
    """What the person copies next, filled in for this application; ``core`` is the core's address
    (core/system/base_url.py ``address_for``), where the embedded outpost answers too."""
    if kind == "oauth2":
        return {"Client ID": provider.client_id, "Client Secret": provider.client_secret,
                "OpenID Configuration URL": f"{core}/application/o/{app.slug}/.well-known/openid-configuration"}
    if kind in ("forward_single", "forward_domain", "proxy"):
        host = urlsplit(provider.external_host).hostname or "app.example.com"
        if kind == "proxy":
            return {"Point DNS for this host at the outpost (it proxies to the application)": provider.external_host}
        outpost = core
        return {
            "Traefik labels": (f"traefik.http.routers.{app.slug}.rule=Host(`{host}`)\n"
                               f"traefik.http.routers.{app.slug}.middlewares=authentik@docker\n"
                               f"traefik.http.middlewares.authentik.forwardauth.address={outpost}"
                               "/outpost.goauthentik.io/auth/traefik\n"
                               "traefik.http.middlewares.authentik.forwardauth.trustForwardHeader=true\n"
                               "traefik.http.middlewares.authentik.forwardauth.authResponseHeaders="
                               "X-authentik-username,X-authentik-groups,X-authentik-email,X-authentik-name,"
                               "X-authentik-uid,X-authentik-jwt,X-authentik-meta-jwks,X-authentik-meta-outpost,"
                               "X-authentik-meta-provider,X-authentik-meta-app,X-authentik-meta-version"),
            "Caddyfile": (f"{host} {{\n  route {{\n    reverse_proxy /outpost.goauthentik.io/* {outpost}\n"
                          f"    forward_auth {outpost} {{\n      uri /outpost.goauthentik.io/auth/caddy\n"
                          "      copy_headers X-Authentik-Username X-Authentik-Groups X-Authentik-Email "
                          "X-Authentik-Name X-Authentik-Uid X-Authentik-Jwt X-Authentik-Meta-Jwks "
                          "X-Authentik-Meta-Outpost X-Authentik-Meta-Provider X-Authentik-Meta-App "
                          "X-Authentik-Meta-Version\n      trusted_proxies private_ranges\n    }\n"
                          "    reverse_proxy <your app>\n  }\n}"),
            "nginx (server block; configs/nginx has the full snippet)": (
                f"server_name {host};\nlocation /outpost.goauthentik.io {{\n    proxy_pass {outpost}/outpost.goauthentik.io;\n"
                "    proxy_set_header Host $host;\n    proxy_set_header X-Original-URL $scheme://$http_host$request_uri;\n"
                "}\nlocation / {\n    auth_request /outpost.goauthentik.io/auth/nginx;\n"
                "    error_page 401 = @goauthentik_proxy_signin;\n    proxy_pass <your app>;\n}\n"
                "location @goauthentik_proxy_signin {\n    internal;\n"
                "    return 302 /outpost.goauthentik.io/start?rd=$scheme://$http_host$request_uri;\n}"),
        }
    if kind == "ldap":
        base = provider.base_dn.lower()
        return {"Base DN": base, "ldapsearch": (f"ldapsearch -x -H ldap://<outpost>:3389 -ZZ -D cn=<user>,ou=users,{base} "
                                                f"-W -b {base} '(objectClass=user)' cn mail memberOf")}
    return {"Shared secret": provider.shared_secret,
            "radtest": f"radtest <user> '<password>' <outpost> 0 '{provider.shared_secret}'"}


def wizard_view(admin_site, request):
    from core.system.base_url import address_for

    initial = {"outpost": Outpost.objects.filter(managed=EMBEDDED_OUTPOST_MANAGED).first()}
    form = WizardForm(request.POST or None, initial=initial)
    context = {**admin_site.each_context(request), "title": "Create an application with the wizard", "form": form,
               "opts": Application._meta}
    if request.method == "POST" and form.is_valid():
        try:
            provider, app = create(form.cleaned_data)
        except ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {"__all__": exc.detail}
            for field, errors in detail.items():
                messages = [str(e) for e in (errors if isinstance(errors, list) else [errors])]
                form.add_error(field if field in form.fields else None, "; ".join(messages))
        else:
            core, core_source = address_for(request)
            context.update({"created": app, "provider": provider, "core": core, "core_source": core_source,
                            "snippets": snippets(form.cleaned_data["kind"], provider, app, core)})
            response = render(request, "admin/accounts/wizard.html", context)
            response["Cache-Control"] = "no-store"  # a client secret or shared secret is on it
            return response
    return render(request, "admin/accounts/wizard.html", context)
