"""``{% admin_section opts as section %}``: the authentik menu (core/accounts/admin_site.py SECTIONS) a model sits
in, for the breadcrumbs (``Home › Applications › OAuth2/OpenID Providers``), not Django's app name ("Providers_Oauth2",
"Outposts › Outposts"). Its URL is the index at that menu."""

from __future__ import annotations

from functools import cache

from django import template
from django.urls import reverse

from core.accounts.admin_site import SECTIONS

register = template.Library()


@cache
def _sections() -> dict[tuple[str, str], str]:
    return {key: name for name, members in SECTIONS for key in members}


@register.simple_tag
def admin_section(opts) -> dict:
    name = _sections().get((opts.app_label, opts.object_name))
    if name is None:  # not in a menu (tests/web/test_admin_names.py fails on that): Django's app page
        return {"name": opts.app_config.verbose_name, "url": reverse("admin:app_list", args=[opts.app_label])}
    return {"name": name, "url": f"{reverse('admin:index')}#{name.lower()}"}
