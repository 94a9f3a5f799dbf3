from django.apps import AppConfig


class AuthentikProvidersProxyConfig(AppConfig):
    name = "core.providers.proxy"
    label = "authentik_providers_proxy"
    verbose_name = "Proxy Provider"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import m2m_changed, post_save

        from core.accounts.models import Provider
        from core.oidc.models import ScopeMapping
        from core.providers.proxy.models import default_scope_mapping_saved, keep_default_scope_mappings

        m2m_changed.connect(keep_default_scope_mappings, sender=Provider.property_mappings.through,
                            dispatch_uid="proxy-default-scope-mappings-kept")
        post_save.connect(default_scope_mapping_saved, sender=ScopeMapping,
                          dispatch_uid="proxy-default-scope-mappings-created")
