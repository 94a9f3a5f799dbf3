"""System -> Settings in the admin: the base URL (a setting saved here), the session duration (shown: it is set
in the environment and per User Login stage, not here) and "SMTP test mail"."""

import smtplib

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.hosts import BASE_URL_VARIABLE
from core.system import base_url
from core.system.models import SINGLETON_PK, SystemSettings


class TestMailForm(forms.Form):
    address = forms.EmailField(label="Send a test mail to", help_text="Any address you can read.")


@admin.register(SystemSettings)
class SystemSettingsAdmin(admin.ModelAdmin):
    """One row: the list opens it; it can be changed, not added twice or deleted."""

    fields = ("base_url", "base_url_in_use", "session_duration", "mail_delivery")
    readonly_fields = ("base_url_in_use", "session_duration", "mail_delivery")
    change_form_template = "admin/system/settings_change_form.html"

    @admin.display(description="Base URL in use")
    def base_url_in_use(self, obj) -> str:
        value, source = base_url.current_with_source()
        if not value:
            return f"none: set the Base URL above or {BASE_URL_VARIABLE}; until then no mail with a link is sent"
        return f"{value} (from {source})"

    @admin.display(description="Session duration")
    def session_duration(self, obj) -> str:
        """Gatehouse has no session-duration setting of its own to save here: a login lasts
        AUTHENTIK_SESSION_LIFETIME unless the flow's User Login stage sets its own (authentik's place for it)."""
        from core.durations import seconds
        from core.flows.models import UserLoginStage

        lifetime = settings.CONFIG.session_lifetime
        stages = []
        for stage in UserLoginStage.objects.order_by("name"):
            try:
                own = seconds(stage.session_duration) > 0
            except ValueError:
                own = True
            url = reverse("admin:authentik_flows_userloginstage_change", args=[stage.pk])
            stages.append((url, stage.name, stage.session_duration if own else "the lifetime above"))
        listed = format_html_join("", '<li><a href="{}">{}</a>: {}</li>', stages) if stages else "none"
        return format_html("{} s ({}), from AUTHENTIK_SESSION_LIFETIME (set in the environment, not here). A User "
                           "Login stage's Session duration replaces it for its flow:<ul id=\"login-stages\">{}</ul>",
                           lifetime, _human(lifetime), listed)

    @admin.display(description="Mail delivery")
    def mail_delivery(self, obj) -> str:
        email = settings.CONFIG.email
        if not email:
            return "not configured: mail is written to the server's log; set AUTHENTIK_EMAIL__HOST and its siblings"
        return f"{email.host}:{email.port} from {email.sender} (AUTHENTIK_EMAIL__*)"

    def get_urls(self):
        return [path("test-mail/", self.admin_site.admin_view(self.test_mail), name="authentik_admin_test_mail"),
                *super().get_urls()]

    def test_mail(self, request):
        """Send a test mail now (not through the outbox: the answer says at once whether delivery works)."""
        from core.events.record import record
        from core.mail.delivery import send_test_mail

        form = TestMailForm(request.POST or None, initial={"address": request.user.email})
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": "SMTP test mail"}
        if request.method == "POST" and form.is_valid():
            address = form.cleaned_data["address"]
            try:
                where = send_test_mail(address)
            except (OSError, smtplib.SMTPException) as exc:
                context["error"] = (f"The test mail to {address} was not sent: {type(exc).__name__}: {exc}. Check "
                                    "AUTHENTIK_EMAIL__HOST, __PORT, __USE_TLS/__USE_SSL and the credentials.")
            else:
                record("email_sent", user=request.user, to=address, subject="Gatehouse test mail", test=True)
                messages.success(request, f"A test mail to {address} was handed to {where}.")
                return HttpResponseRedirect(reverse("admin:authentik_admin_test_mail"))
        return render(request, "admin/system/test_mail.html", context)

    def changelist_view(self, request, extra_context=None):
        if not SystemSettings.objects.filter(pk=SINGLETON_PK).exists():
            SystemSettings.load().save()  # the defaults, so that there is one row to change
        return HttpResponseRedirect(reverse("admin:authentik_admin_systemsettings_change", args=[SINGLETON_PK]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _human(total: int) -> str:
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    parts = [f"{days} day{'s' * (days != 1)}" if days else "", f"{hours} h" if hours else "",
             f"{rest // 60} min" if rest // 60 else "", f"{rest % 60} s" if rest % 60 else ""]
    return " ".join(p for p in parts if p) or "0 s"
