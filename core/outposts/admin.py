from django.contrib import admin

from core.outposts.models import Outpost


@admin.register(Outpost)
class OutpostAdmin(admin.ModelAdmin):
    list_display = ("name", "type", "managed")
    filter_horizontal = ("providers",)
