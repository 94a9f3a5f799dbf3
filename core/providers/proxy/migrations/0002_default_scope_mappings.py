"""Proxy providers stored before the model kept authentik's default scope mappings (issue 8 item 2) get them
now, so their logins carry a username. A database without the mappings yet (fresh, the built-in blueprints
not run) has nothing to add; the post_save receiver in models.py adds them when the mappings appear."""

from django.db import migrations

from core.providers.proxy.models import DEFAULT_SCOPE_MANAGED


def add_default_scope_mappings(apps, schema_editor):
    proxy_provider = apps.get_model("authentik_providers_proxy", "ProxyProvider")
    scope_mapping = apps.get_model("authentik_providers_oauth2", "ScopeMapping")
    through = apps.get_model("authentik_core", "Provider").property_mappings.through
    mappings = list(scope_mapping.objects.filter(managed__in=DEFAULT_SCOPE_MANAGED).values_list("pk", flat=True))
    providers = list(proxy_provider.objects.values_list("pk", flat=True))
    through.objects.bulk_create([through(provider_id=p, propertymapping_id=m) for p in providers for m in mappings],
                                ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("authentik_providers_proxy", "0001_initial"),
        ("authentik_providers_oauth2", "0001_initial"),
    ]

    operations = [migrations.RunPython(add_default_scope_mappings, migrations.RunPython.noop)]
