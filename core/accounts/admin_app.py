"""``django.contrib.admin`` with core/accounts/admin_site.py as ``admin.site`` (its login goes through the flow).
A module of its own: INSTALLED_APPS imports it before the models exist, and core/accounts/apps.py must keep a
single AppConfig for ``core.accounts``."""

from django.contrib.admin.apps import AdminConfig


class GatehouseAdminConfig(AdminConfig):
    default_site = "core.accounts.admin_site.GatehouseAdminSite"
