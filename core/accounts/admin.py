"""The admin interface at /if/admin/ (Django admin), with the seeds' CSV user import. The site itself (its
login goes through the authentication flow) is core/accounts/admin_site.py."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import Group as AuthGroup
from django.shortcuts import redirect, render
from django.urls import path

from core.accounts.csv_import import import_users
from core.accounts.models import (
    Application,
    AuthenticatedSession,
    Group,
    PropertyMapping,
    Provider,
    Token,
    User,
)


class CSVImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header: username,email,name[,password][,groups][,is_active]")


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("username", "name", "email", "is_active", "type", "date_joined")
    list_filter = ("is_active", "type", "groups")
    search_fields = ("username", "name", "email")
    filter_horizontal = ("groups",)
    exclude = ("password",)
    readonly_fields = ("uuid", "date_joined", "password_change_date", "last_login")
    change_list_template = "admin/accounts/user_changelist.html"

    def get_urls(self):
        return [path("import/", self.admin_site.admin_view(self.import_csv), name="authentik_core_user_import"),
                *super().get_urls()]

    def import_csv(self, request):
        form = CSVImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            raw = form.cleaned_data["file"].read()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                messages.error(request, "The file is not UTF-8 text; save it as CSV UTF-8 and try again.")
                return redirect(".")
            result = import_users(text)
            if result.errors:
                for err in result.errors[:50]:
                    messages.error(request, err)
                messages.error(request, "Nothing was imported; fix the lines above and upload again.")
                return redirect(".")
            messages.success(request, f"Imported: {len(result.created)} created, {len(result.updated)} updated.")
            return redirect("..")
        return render(request, "admin/accounts/user_import.html",
                      {**self.admin_site.each_context(request), "form": form, "title": "Import users from CSV",
                       "opts": self.model._meta})


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "is_superuser", "parent")
    search_fields = ("name",)


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "provider", "meta_launch_url")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ("identifier", "intent", "user", "expires", "expiring")
    list_filter = ("intent",)
    readonly_fields = ("key_hash", "key_salt", "key_sealed")


@admin.register(AuthenticatedSession)
class AuthenticatedSessionAdmin(admin.ModelAdmin):
    list_display = ("user", "last_ip", "last_user_agent", "created", "expires")
    readonly_fields = ("session_key", "sid")


admin.site.register(Provider)
# Django's own auth Group is not Gatehouse's (authentik_core Group is): one "Groups" in the admin, not two.
if admin.site.is_registered(AuthGroup):
    admin.site.unregister(AuthGroup)
admin.site.register(PropertyMapping)
