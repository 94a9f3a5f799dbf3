"""The admin site at /if/admin/: Django's admin, except that its login goes through the flow.

Django's admin login form checked a password itself, so it skipped the authentication flow: its MFA stage, the
rate limits and the ``login_failed`` events (issue 8 items 1 and 5). Here ``login`` never serves a form and never
reads a posted password: an anonymous visitor goes to the default authentication flow with a validated ``next``;
a signed-in user who may not use the admin is told so instead of being asked to log in again.
"""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.http import HttpResponseRedirect


class GatehouseAdminSite(AdminSite):
    site_header = "Gatehouse administration"
    site_title = "Gatehouse"

    def login(self, request, extra_context=None):
        from core.flows.planner import safe_next
        from core.flows.views import denied_page, login_redirect

        if not request.user.is_authenticated:
            return login_redirect(request)
        if self.has_permission(request):
            return HttpResponseRedirect(safe_next(request.GET.get("next"), request.get_host()) or self.index_url())
        return denied_page(request, f"You are signed in as {request.user.username}, who may not use the admin: it "
                                    "needs a superuser (a member of a group with is_superuser). Sign out to use "
                                    "another account.", 403)

    def index_url(self) -> str:
        from django.urls import reverse

        return reverse("admin:index", current_app=self.name)
