"""The admin interface at /if/admin/ (Django admin), with the seeds' CSV user import. The site itself (its
login goes through the authentication flow) is core/accounts/admin_site.py."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.models import Group as AuthGroup
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from core.accounts import admin_mfa
from core.accounts.csv_import import import_users
from core.accounts.models import (
    Application,
    AuthenticatedSession,
    Group,
    PropertyMapping,
    Provider,
    Token,
    TokenIntents,
    TokenKeyUnreadable,
    User,
)
from core.accounts.recovery_links import RECOVERY_PATH, recovery_key
from core.events.record import record
from core.flows.models import StaticDevice, TOTPDevice, WebAuthnDevice
from core.inheritance import concrete, subclass_lookups
from core.system import base_url

RECOVERY_LINK_LIFETIME = timedelta(minutes=30)  # the API's default (RECOVERY_LINK_DURATION)


class CSVImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header: username,email,name[,password][,groups][,is_active]")


class SetPasswordForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    repeat = forms.CharField(widget=forms.PasswordInput, strip=False, label="Password (again)")

    def clean(self):
        data = super().clean()
        if data.get("password") != data.get("repeat"):
            raise forms.ValidationError("the two passwords differ; type the same password twice")
        return data


def _device_inline(device_model):
    """The user's MFA devices of one kind, listed with their last use and removable (authentik: Directory ->
    Users -> a user -> MFA Authenticators); "Enroll" adds one (core/accounts/admin_mfa.py)."""

    class DeviceInline(admin.TabularInline):
        model = device_model
        fields = ("name", "confirmed", "last_used")
        readonly_fields = fields
        extra = 0
        can_delete = True

        def has_add_permission(self, request, obj=None):
            return False

    DeviceInline.__name__ = f"{device_model.__name__}Inline"
    return DeviceInline


def superuser_groups() -> set:
    """The pks of the groups that make their members superusers: is_superuser on the group or a parent."""
    groups = list(Group.objects.select_related("parent"))
    return {g.pk for g in groups if any(a.is_superuser for a in g.ancestors())}


class SuperuserFilter(admin.SimpleListFilter):
    """User.is_superuser is a group's (or a parent group's) flag, not a column."""

    title = "superuser"
    parameter_name = "superuser"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(groups__in=superuser_groups()).distinct()
        if self.value() == "no":
            return queryset.exclude(groups__in=superuser_groups())
        return queryset


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("username", "name", "email", "is_active", "type", "date_joined")
    list_filter = ("is_active", SuperuserFilter, "type", "groups")
    search_fields = ("username", "name", "email")
    filter_horizontal = ("groups",)
    exclude = ("password",)
    readonly_fields = ("uuid", "date_joined", "password_change_date", "last_login")
    change_list_template = "admin/accounts/user_changelist.html"
    change_form_template = "admin/accounts/user_change_form.html"
    actions = ("deactivate", "activate")
    inlines = [_device_inline(model) for model in (TOTPDevice, StaticDevice, WebAuthnDevice)]

    @admin.action(description="Deactivate selected users (their sessions end)")
    def deactivate(self, request, queryset):
        users = list(queryset.exclude(pk=request.user.pk))
        for user in users:  # one save each: the outposts hear of each change (core/outposts/signals.py)
            user.is_active = False
            user.save(update_fields=["is_active"])
            AuthenticatedSession.objects.filter(user=user).delete()  # SESSION_END to outposts
        if queryset.filter(pk=request.user.pk).exists():
            messages.warning(request, "You cannot deactivate yourself; the others were deactivated.")
        messages.success(request, f"Deactivated {len(users)} user(s).")

    @admin.action(description="Activate selected users")
    def activate(self, request, queryset):
        users = list(queryset.filter(is_active=False))
        for user in users:
            user.is_active = True
            user.save(update_fields=["is_active"])
        messages.success(request, f"Activated {len(users)} user(s).")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("import/", view(self.import_csv), name="authentik_core_user_import"),
                path("<int:pk>/password/", view(self.set_password), name="authentik_core_user_set_password"),
                path("<int:pk>/recovery/", view(self.recovery_link), name="authentik_core_user_recovery"),
                path("<int:pk>/enroll/", view(self.enroll), name="authentik_core_user_enroll"),
                path("<int:pk>/enroll/totp/<int:device>/", view(self.confirm_totp),
                     name="authentik_core_user_enroll_totp"),
                *super().get_urls()]

    def _user_or_404(self, pk) -> User:
        user = User.objects.filter(pk=pk).first()
        if user is None:
            raise Http404(f"no user with pk {pk}")
        return user

    def enroll(self, request, pk):
        return admin_mfa.enroll(self, request, self._user_or_404(pk))

    def confirm_totp(self, request, pk, device):
        return admin_mfa.confirm_totp(self, request, self._user_or_404(pk), device)

    def set_password(self, request, pk):
        user = self._user_or_404(pk)
        form = SetPasswordForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            user.set_password(form.cleaned_data["password"])
            user.save()
            record("password_set", user=request.user, target=user.username, message="password set in the admin")
            messages.success(request, f"The password of {user.username} is set.")
            return redirect(reverse("admin:authentik_core_user_change", args=[user.pk]))
        return render(request, "admin/accounts/user_action.html",
                      {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                       "title": f"Set the password of {user.username}", "target": user, "submit": "Set password"})

    def recovery_link(self, request, pk):
        """A one-time recovery link, shown once (as the API's users/<pk>/recovery/ and ak create_recovery_key)."""
        user = self._user_or_404(pk)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "target": user,
                   "title": f"Recovery link for {user.username}", "submit": "Create a recovery link"}
        if request.method != "POST":
            return render(request, "admin/accounts/user_action.html", context)
        key = recovery_key(user, RECOVERY_LINK_LIFETIME, f"Recovery link created in the admin by {request.user.username}")
        record("secret_rotate", user=request.user, target=user.username, message="recovery link created in the admin")
        context["link"] = f"{base_url.current()}{RECOVERY_PATH}{key}"  # relative without a base URL, as the API
        response = render(request, "admin/accounts/user_action.html", context)
        response["Cache-Control"] = "no-store"
        return response

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


class GroupForm(forms.ModelForm):
    """A group with its members (User.groups seen from the group) in the two-column picker, and its parent."""

    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("username"), required=False, label="Members",
        widget=FilteredSelectMultiple("users", is_stacked=False))

    class Meta:
        model = Group
        fields = ("name", "is_superuser", "parent", "members", "attributes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.initial.setdefault("members", list(self.instance.users.values_list("pk", flat=True)))
            # a group cannot be its own parent
            self.fields["parent"].queryset = Group.objects.exclude(pk=self.instance.pk)

    def clean_parent(self):
        parent = self.cleaned_data.get("parent")
        if parent is not None and not self.instance._state.adding and any(g.pk == self.instance.pk for g in parent.ancestors()):
            raise forms.ValidationError(f"{parent.name!r} is inside {self.instance.name!r} already: a group cannot "
                                        "be a parent of its own parent; choose another group or none")
        return parent


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    form = GroupForm
    list_display = ("name", "is_superuser", "parent", "member_count")
    list_filter = ("is_superuser",)
    search_fields = ("name",)

    @admin.display(description="Members")
    def member_count(self, group) -> int:
        return group.users.count()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # one m2m change: the outposts refetch and the audit records it on the group (relation "users")
        form.instance.users.set(form.cleaned_data.get("members") or [])


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    change_list_template = "admin/accounts/application_changelist.html"  # "Create with wizard"
    list_display = ("name", "slug", "provider", "meta_launch_url")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


def reveal_key(request, token: Token, what: str) -> str:
    """A token's key, shown on demand (a POST) and recorded as a ``secret_view`` event, as authentik's view_key;
    the caller answers with Cache-Control: no-store. Raises TokenKeyUnreadable."""
    key = token.read_key()
    record("secret_view", user=request.user, token=token.identifier, what=what)
    return key


class TokenForm(forms.ModelForm):
    class Meta:
        model = Token
        fields = ("identifier", "intent", "user", "description", "expiring", "expires")
        help_texts = {"expires": "When the token stops working (with Expiring on); empty with Expiring off: never."}

    def clean(self):
        data = super().clean()
        if data.get("expiring") and not data.get("expires"):
            self.add_error("expires", "an expiring token needs a date; set one, or turn Expiring off")
        if not data.get("expiring"):
            data["expires"] = None
        if not self.instance._state.adding and "intent" in data and data["intent"] != self.instance.intent \
                and TokenIntents.INTENT_RADIUS in (data["intent"], self.instance.intent):
            self.add_error("intent", "a network password (RADIUS) cannot become another kind of token, nor another "
                                     "token a network password; create a new token with the intent you need")
        return data


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    """Tokens and app passwords: expiry shown and editable; "Copy key" shows a key on demand (POST) with a
    ``secret_view`` event and Cache-Control: no-store, as the outposts' deployment info does. A new token gets a
    random key; a network password (RADIUS) shows its key once, right after it is created, and never again."""

    form = TokenForm
    list_display = ("identifier", "intent", "user", "expires", "expiring", "expired", "copy_key")
    list_filter = ("intent", "expiring")
    search_fields = ("identifier", "description", "user__username")
    change_form_template = "admin/accounts/token_change_form.html"

    def has_change_permission(self, request, obj=None) -> bool:
        # a managed token (an outpost's) is Gatehouse's: deleting it has it re-created, editing it is refused
        return super().has_change_permission(request, obj) and not (obj is not None and obj.managed)

    @admin.display(description="Expired", boolean=True)
    def expired(self, token: Token) -> bool:
        return token.is_expired

    @admin.display(description="Key")
    def copy_key(self, token: Token) -> str:
        if token.intent == TokenIntents.INTENT_RADIUS:
            return "shown once, at creation"
        url = reverse("admin:authentik_core_token_key", args=[token.pk])
        return format_html('<a href="{}">Copy key</a>', url)

    def save_model(self, request, obj, form, change):
        if not change:
            obj._plain_key = obj.set_key()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        if obj.intent != TokenIntents.INTENT_RADIUS:
            return super().response_add(request, obj, post_url_continue)
        return self._key_page(request, obj, obj._plain_key, once=True)

    def get_urls(self):
        return [path("<uuid:pk>/key/", self.admin_site.admin_view(self.key_view), name="authentik_core_token_key"),
                *super().get_urls()]

    def _key_page(self, request, token, key, once=False, error=""):
        response = render(request, "admin/accounts/token_key.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "token": token, "key": key,
            "once": once, "error": error, "title": f"Key of {token.identifier}"})
        if key:
            response["Cache-Control"] = "no-store"
        return response

    def key_view(self, request, pk):
        from core.accounts.api_tokens import UNREADABLE_KEY

        token = Token.objects.filter(pk=pk).first()
        if token is None:
            raise Http404(f"no token {pk}")
        if token.intent == TokenIntents.INTENT_RADIUS:
            return self._key_page(request, token, "", error=f"{token.identifier} is a network password (RADIUS): "
                                  "its key was shown once, when it was created; if it is lost, delete this token "
                                  "and create a new one")
        if request.method != "POST":
            return self._key_page(request, token, "")
        try:
            key = reveal_key(request, token, "token key (admin)")
        except TokenKeyUnreadable as exc:
            return self._key_page(request, token, "", error=UNREADABLE_KEY[exc.reason].format(
                identifier=token.identifier))
        return self._key_page(request, token, key)


@admin.register(AuthenticatedSession)
class AuthenticatedSessionAdmin(admin.ModelAdmin):
    list_display = ("user", "last_ip", "last_user_agent", "created", "expires")
    readonly_fields = ("session_key", "sid")


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    """Applications -> Providers: every kind in one list. "Add" asks for the kind first (authentik: Providers ->
    Create -> OAuth2/OpenID Provider), and a row opens its kind's own page: Django's form would have made a
    provider of no kind, which nothing serves (the API creates providers only through a kind's endpoint)."""

    list_display = ("name", "kind", "application")
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*subclass_lookups(Provider), "application")

    @admin.display(description="Type")
    def kind(self, provider: Provider) -> str:
        return concrete(provider)._meta.verbose_name

    def _kinds(self) -> list[tuple[str, str]]:
        models = [m for m in self.admin_site._registry if issubclass(m, Provider) and m is not Provider]
        return sorted((m._meta.verbose_name, reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_add"))
                      for m in models)

    def add_view(self, request, form_url="", extra_context=None):
        return render(request, "admin/accounts/provider_add.html",
                      {**self.admin_site.each_context(request), "title": "Create a provider", "kinds": self._kinds(),
                       "opts": self.model._meta})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        provider = Provider.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        kind = concrete(provider) if provider is not None else None
        if kind is not None and type(kind) is not Provider:
            meta = kind._meta
            return redirect(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[kind.pk]))
        return super().change_view(request, object_id, form_url, extra_context)


# Django's own auth Group is not Gatehouse's (authentik_core Group is): one "Groups" in the admin, not two.
if admin.site.is_registered(AuthGroup):
    admin.site.unregister(AuthGroup)
admin.site.register(PropertyMapping)
