"""Outposts in the admin: the list with each outpost's connections and "View deployment info" (authentik's
"Deployment info": the AUTHENTIK_HOST and AUTHENTIK_TOKEN a standalone outpost needs, the token shown on demand
with a ``secret_view`` event, and a docker compose service as seed 004 writes it, on Gatehouse's outpost image)."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html

from core.api.admin_checks import APIChecked
from core.outposts.api import OutpostSerializer
from core.outposts.models import EMBEDDED_OUTPOST_MANAGED, Outpost

IMAGE = "gatehouse/outpost:latest"  # Dockerfile.outpost (README "Containers"); ENTRYPOINT ak outpost
PORTS = {"proxy": ("9000:9000", "9443:9443"), "ldap": ("389:3389", "636:6636"),
         "radius": ("1812:1812/udp", "1813:1813/udp")}


def compose_snippet(outpost: Outpost, host: str, token: str) -> str:
    ports = "\n".join(f"      - {p}" for p in PORTS.get(outpost.type, ()))
    return (f"services:\n"
            f"  gatehouse_{outpost.type}:\n"
            f"    image: {IMAGE}\n"
            f"    command: {outpost.type}\n"
            f"    restart: unless-stopped\n"
            f"    ports:\n{ports}\n"
            f"    environment:\n"
            f"      AUTHENTIK_HOST: {host}\n"
            f"      AUTHENTIK_INSECURE: \"false\"\n"
            f"      AUTHENTIK_TOKEN: {token}\n")


def core_url(request, outpost: Outpost) -> str:
    """What the outpost should set as AUTHENTIK_HOST: its own ``authentik_host`` setting, else the base URL, else
    the address this page was reached at."""
    from core.system.base_url import current_with_source

    configured = str((outpost.config or {}).get("authentik_host") or "")
    if configured:
        return configured
    base, _source = current_with_source()
    return (base or f"{request.scheme}://{request.get_host()}").rstrip("/") + "/"


@admin.register(Outpost)
class OutpostAdmin(APIChecked, admin.ModelAdmin):
    api_serializer = OutpostSerializer
    list_display = ("name", "type", "connected", "deployment_info")
    filter_horizontal = ("providers",)

    @admin.display(description="Connected instances")
    def connected(self, outpost: Outpost) -> int:
        from core.outposts.hub import publisher

        return sum(hub.connected(outpost.pk) for hub in publisher().hubs)

    @admin.display(description="Deployment")
    def deployment_info(self, outpost: Outpost) -> str:
        if outpost.managed == EMBEDDED_OUTPOST_MANAGED:
            return "runs inside ak server"
        url = reverse("admin:authentik_outposts_outpost_deployment", args=[outpost.pk])
        return format_html('<a href="{}">View deployment info</a>', url)

    def get_urls(self):
        return [path("<uuid:pk>/deployment/", self.admin_site.admin_view(self.deployment_view),
                     name="authentik_outposts_outpost_deployment"), *super().get_urls()]

    def deployment_view(self, request, pk):
        from core.accounts.models import Token
        from core.events.record import record

        outpost = Outpost.objects.filter(pk=pk).first()
        if outpost is None:
            raise Http404(f"no outpost {pk}")
        host = core_url(request, outpost)
        token, shown = "<token>", False
        if request.method == "POST":  # shown on demand, and recorded as authentik records view_key
            row = Token.objects.filter(identifier=outpost.token_identifier).first()
            if row is None:
                raise Http404(f"outpost {outpost.name!r} has no token yet: save it once to create one")
            token, shown = row.read_key(), True
            record("secret_view", user=request.user, token=row.identifier, what="outpost token (deployment info)")
        context = {**self.admin_site.each_context(request), "title": f"Deployment info: {outpost.name}",
                   "outpost": outpost, "host": host, "token": token, "shown": shown,
                   "embedded": outpost.managed == EMBEDDED_OUTPOST_MANAGED,
                   "compose": compose_snippet(outpost, host, token), "opts": Outpost._meta}
        response = render(request, "admin/outposts/deployment.html", context)
        if shown:
            response["Cache-Control"] = "no-store"
        return response
