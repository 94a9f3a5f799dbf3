"""Flows, stages and their bindings in the admin interface (the executor is in executor.py)."""

from django.contrib import admin

from core.flows import models


class FlowStageBindingInline(admin.TabularInline):
    model = models.FlowStageBinding
    fk_name = "target"
    extra = 0
    fields = ("order", "stage", "evaluate_on_plan", "re_evaluate_policies", "invalid_response_action")


@admin.register(models.Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "designation", "authentication")
    list_filter = ("designation",)
    search_fields = ("slug", "name", "title")
    inlines = [FlowStageBindingInline]
    exclude = ("stages",)


for stage in (models.IdentificationStage, models.PasswordStage, models.AuthenticatorValidateStage,
              models.AuthenticatorTOTPStage, models.AuthenticatorStaticStage, models.AuthenticatorWebAuthnStage,
              models.PromptStage, models.UserWriteStage, models.UserLoginStage, models.UserLogoutStage,
              models.ConsentStage, models.DenyStage, models.EmailStage, models.Prompt):
    admin.site.register(stage)


@admin.register(models.TOTPDevice, models.StaticDevice, models.WebAuthnDevice)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "confirmed", "created", "last_used")
    exclude = ("key",)
