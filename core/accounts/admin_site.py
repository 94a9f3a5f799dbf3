"""The admin site at /if/admin/: Django's admin, except that its login goes through the flow, and its index and
sidebar are grouped in authentik's admin menus (Applications, Events, Customisation, Directory, System) with the
names the seeds and authentik's documentation use (the models' verbose names), not Django's app labels.

Django's admin login form checked a password itself, so it skipped the authentication flow: its MFA stage, the
rate limits and the ``login_failed`` events (issue 8 items 1 and 5). Here ``login`` never serves a form and never
reads a posted password: an anonymous visitor goes to the default authentication flow with a validated ``next``;
a signed-in user who may not use the admin is told so instead of being asked to log in again.
"""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.http import HttpResponseRedirect

# authentik's admin menus: (section, [(app_label, model class name), ...]) in the order they show.
SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Applications", (
        ("authentik_core", "Application"), ("authentik_core", "Provider"),
        ("authentik_providers_oauth2", "OAuth2Provider"), ("authentik_providers_proxy", "ProxyProvider"),
        ("authentik_providers_ldap", "LDAPProvider"), ("authentik_providers_radius", "RadiusProvider"),
        ("authentik_outposts", "Outpost"), ("authentik_core", "PropertyMapping"),
        ("authentik_providers_oauth2", "ScopeMapping"), ("authentik_providers_radius", "RadiusProviderPropertyMapping"),
    )),
    ("Events", (("authentik_events", "Event"),)),
    ("Customisation", (
        ("authentik_policies", "ExpressionPolicy"), ("authentik_policies", "PasswordPolicy"),
        ("authentik_policies", "ReputationPolicy"), ("authentik_policies", "PolicyBinding"),
        ("authentik_policies", "Reputation"), ("authentik_flows", "Flow"), ("authentik_flows", "Prompt"),
        ("authentik_flows", "IdentificationStage"), ("authentik_flows", "PasswordStage"),
        ("authentik_flows", "AuthenticatorValidateStage"), ("authentik_flows", "AuthenticatorTOTPStage"),
        ("authentik_flows", "AuthenticatorStaticStage"), ("authentik_flows", "AuthenticatorWebAuthnStage"),
        ("authentik_flows", "PromptStage"), ("authentik_flows", "UserWriteStage"), ("authentik_flows", "UserLoginStage"),
        ("authentik_flows", "UserLogoutStage"), ("authentik_flows", "ConsentStage"), ("authentik_flows", "DenyStage"),
        ("authentik_flows", "EmailStage"), ("authentik_blueprints", "BlueprintInstance"),
    )),
    ("Directory", (
        ("authentik_core", "User"), ("authentik_core", "Group"), ("authentik_core", "Token"),
        ("authentik_core", "AuthenticatedSession"), ("authentik_flows", "TOTPDevice"),
        ("authentik_flows", "StaticDevice"), ("authentik_flows", "WebAuthnDevice"),
    )),
    ("System", (("authentik_admin", "SystemSettings"), ("authentik_crypto", "CertificateKeyPair"))),
)


class GatehouseAdminSite(AdminSite):
    site_header = "Gatehouse administration"
    site_title = "Gatehouse"
    index_title = "Admin"
    index_template = "admin/accounts/index.html"  # the Overview (core/accounts/admin_dashboard.py) above the menus

    def index(self, request, extra_context=None):
        from core.accounts.admin_dashboard import context

        # each menu in its own element with the menu's anchor (#applications...), where breadcrumbs link
        menus = [[section] for section in self.get_app_list(request)]
        return super().index(request, {**context(), "menus": menus, **(extra_context or {})})

    def get_urls(self):
        from django.urls import path

        from core.accounts.admin_wizard import wizard_view

        return [path("wizard/application/", self.admin_view(lambda request: wizard_view(self, request)),
                     name="application_wizard"), *super().get_urls()]

    def get_app_list(self, request, app_label=None):
        """The index and the sidebar in authentik's menus; an app's own page (``app_label``) as Django lists it.
        A registered model missing from SECTIONS still shows, under "Other" (tests/web/test_admin_names.py fails
        on it)."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {(app["app_label"], entry["object_name"]): entry for app in apps for entry in app["models"]}
        sections = []
        for name, members in SECTIONS:
            entries = [models.pop(key) for key in members if key in models]
            if entries:
                sections.append(self._section(name, entries))
        if models:
            sections.append(self._section("Other", list(models.values())))
        return sections

    def _section(self, name: str, entries: list[dict]) -> dict:
        # app_url: the index at this section (the sidebar marks a section current when its URL is in the path)
        return {"name": name, "app_label": name.lower(), "app_url": f"{self.index_url()}#{name.lower()}",
                "has_module_perms": True, "models": entries}

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

