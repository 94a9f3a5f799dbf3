from django.contrib import admin

from core.policies import models


@admin.register(models.PolicyBinding)
class PolicyBindingAdmin(admin.ModelAdmin):
    list_display = ("target", "order", "policy", "group", "user", "negate", "enabled")


for policy in (models.ExpressionPolicy, models.PasswordPolicy, models.ReputationPolicy):
    admin.site.register(policy)


@admin.register(models.Reputation)
class ReputationAdmin(admin.ModelAdmin):
    list_display = ("identifier", "ip", "score", "updated")
