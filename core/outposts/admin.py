"""Outposts in the admin: the list with each outpost's connections and "View deployment info" (authentik's
"Deployment info": the AUTHENTIK_HOST and AUTHENTIK_TOKEN a standalone outpost needs, the token shown on demand
with a ``secret_view`` event, and a docker compose service as seed 004 writes it, on Gatehouse's outpost image)."""

from __future__ import annotations

import yaml
from django import forms
from django.contrib import admin
from django.http import Http404
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html

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


def health(outpost: Outpost) -> dict:
    """What the admin shows of an outpost's health: its connected instances (the websockets this process's hubs
    hold, or more when the cache knows more), and the version and last hello of each instance the cache knows
    (core/outposts/state.py, kept 15 s after the last hello)."""
    from datetime import datetime

    from core.outposts.hub import publisher
    from core.outposts.state import list_states

    states = list_states(outpost)
    seen = [datetime.fromisoformat(s["last_seen"]) for s in states if s.get("last_seen")]
    # this process's websockets, or the instances other replicas hold (with Redis the cache is shared)
    here = sum(hub.connected(outpost.pk) for hub in publisher().hubs)
    return {"connected": max(here, len(states)), "instances": len(states),
            "versions": sorted({str(s.get("version") or "?") for s in states}), "last_seen": max(seen, default=None)}


def core_url(request, outpost: Outpost) -> str:
    """What the outpost should set as AUTHENTIK_HOST: its own ``authentik_host`` setting, else the base URL, else
    the address this page was reached at."""
    from core.system.base_url import current_with_source

    configured = str((outpost.config or {}).get("authentik_host") or "")
    if configured:
        return configured
    base, _source = current_with_source()
    return (base or f"{request.scheme}://{request.get_host()}").rstrip("/") + "/"


class YAMLConfigField(forms.CharField):
    """authentik's "Advanced settings": the ``config`` mapping, edited as YAML."""

    widget = forms.Textarea(attrs={"rows": 14, "cols": 80, "class": "vLargeTextField", "spellcheck": "false",
                                   "aria-label": "Advanced settings (YAML)"})

    def prepare_value(self, value):
        if isinstance(value, dict):
            return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        try:
            loaded = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise forms.ValidationError(f"YAML syntax error at {where}{getattr(exc, 'problem', None) or exc}; "
                                        "write one key: value per line") from None
        return {} if loaded is None else loaded


class OutpostForm(forms.ModelForm):
    config = YAMLConfigField(required=False, label="Advanced settings", help_text=(
        "YAML, as authentik's Advanced settings: log_level, authentik_host (the address the outpost reaches the "
        "core at), authentik_host_insecure, authentik_host_browser, refresh_interval (e.g. minutes=5). Keys left "
        "out take their defaults."))

    class Meta:
        model = Outpost
        fields = ("name", "type", "providers", "config")
        widgets = {"name": forms.TextInput(attrs={"class": "vTextField"})}

    def clean_config(self):
        from core.outposts.config import clean_config

        merged, problems = clean_config(self.cleaned_data["config"], unknown_keys=True)
        if problems:
            raise forms.ValidationError([f"{key}: {problem}" for key, problem in problems.items()])
        return merged

    def clean(self):
        from core.outposts.api import providers_problem

        data = super().clean()
        if "type" in data and "providers" in data:
            problem = providers_problem(data["type"], self.instance.managed, data["providers"])
            if problem:
                self.add_error("providers", problem)
        return data


@admin.register(Outpost)
class OutpostAdmin(admin.ModelAdmin):
    """Saving goes through the model: post_save tells the outpost to refetch (core/outposts/signals.py) and the
    audit middleware writes model_created/model_updated (core/events/audit.py), as the API's saves do."""

    form = OutpostForm
    list_display = ("name", "type", "connected", "version", "last_seen", "deployment_info")
    filter_horizontal = ("providers",)

    @admin.display(description="Connected instances")
    def connected(self, outpost: Outpost) -> int:
        return health(outpost)["connected"]

    @admin.display(description="Version")
    def version(self, outpost: Outpost) -> str:
        return ", ".join(health(outpost)["versions"]) or "-"

    @admin.display(description="Last seen")
    def last_seen(self, outpost: Outpost):
        return health(outpost)["last_seen"] or "-"

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
        from core.accounts.admin import reveal_key
        from core.accounts.models import Token

        outpost = Outpost.objects.filter(pk=pk).first()
        if outpost is None:
            raise Http404(f"no outpost {pk}")
        host = core_url(request, outpost)
        token, shown = "<token>", False
        if request.method == "POST":  # shown on demand, and recorded as authentik records view_key
            row = Token.objects.filter(identifier=outpost.token_identifier).first()
            if row is None:
                raise Http404(f"outpost {outpost.name!r} has no token yet: save it once to create one")
            token, shown = reveal_key(request, row, "outpost token (deployment info)"), True
        context = {**self.admin_site.each_context(request), "title": f"Deployment info: {outpost.name}",
                   "outpost": outpost, "host": host, "token": token, "shown": shown,
                   "embedded": outpost.managed == EMBEDDED_OUTPOST_MANAGED,
                   "compose": compose_snippet(outpost, host, token), "opts": Outpost._meta}
        response = render(request, "admin/outposts/deployment.html", context)
        if shown:
            response["Cache-Control"] = "no-store"
        return response
