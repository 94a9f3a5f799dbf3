"""Proxy provider configuration (authentik_providers_proxy); the protocol lives in outpost/proxy/.

The OAuth side of a proxy provider is not the administrator's to get wrong (authentik's
``ProxyProvider.set_oauth_defaults()``): a confidential client, the outpost's callback URLs as its redirect
URIs, claims in the id_token, and the default scope mappings (openid, profile, email, entitlements,
ak_proxy). Without ``profile`` the core's tokens carry no ``preferred_username`` and the outpost would have no
one to name (issue 8 item 2). authentik applies them in its API serializer, which its blueprint importer also
uses; Gatehouse has more ways in (REST API, blueprints, Django admin, the ORM in ``ak shell``, providers stored
by an older version), so the model keeps the rule itself, in one place:

* ``save()`` sets the fields (``set_oauth_defaults``) and then adds any missing default scope mapping
  (``add_default_scope_mappings``);
* removing a default mapping from a proxy provider (``remove``, ``clear``, or ``set`` without it, from either
  side of the relation) puts it back: the ``m2m_changed`` receiver below (connected in apps.py);
* a default mapping created after the providers (a user blueprint applied before the built-ins) is added to
  every proxy provider: the ``post_save`` receiver below;
* providers stored before this rule get them from migration 0002.

Mappings the administrator adds are kept beside the defaults (authentik's serializer adds the defaults after
setting the listed ones: the union). ``kept_relations()`` tells the blueprint importer about the defaults, so a
re-applied blueprint that lists only its own mappings compares equal and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.db import models

from core.oidc.models import OAuth2Provider, generate_cookie_secret
from protocols import proxy_provider

# The scope mappings every proxy provider carries (authentik's set_oauth_defaults(), plus entitlements, which
# authentik's profile-era outposts request too). Created by core/blueprints/default/00-system-providers-*.yaml.
DEFAULT_SCOPE_MANAGED = (
    "goauthentik.io/providers/oauth2/scope-openid",
    "goauthentik.io/providers/oauth2/scope-profile",
    "goauthentik.io/providers/oauth2/scope-email",
    "goauthentik.io/providers/oauth2/scope-entitlements",
    "goauthentik.io/providers/proxy/scope-proxy",
)


class ProxyMode(models.TextChoices):  # the values are the contract's (protocols/proxy_provider.py)
    PROXY = proxy_provider.PROXY, "Proxy"  # the labels are authentik's (its provider form)
    FORWARD_SINGLE = proxy_provider.FORWARD_SINGLE, "Forward auth (single application)"
    FORWARD_DOMAIN = proxy_provider.FORWARD_DOMAIN, "Forward auth (domain level)"


class ProxyProvider(OAuth2Provider):
    internal_host = models.TextField(blank=True, default="")
    external_host = models.TextField()
    internal_host_ssl_validation = models.BooleanField(default=True, verbose_name="Internal host SSL validation")
    certificate = models.ForeignKey("authentik_crypto.CertificateKeyPair", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    skip_path_regex = models.TextField(blank=True, default="", help_text="one regex per line, matched anchored")
    basic_auth_enabled = models.BooleanField(default=False)
    basic_auth_user_attribute = models.TextField(blank=True, default="")
    basic_auth_password_attribute = models.TextField(blank=True, default="")
    mode = models.TextField(choices=ProxyMode.choices, default=ProxyMode.PROXY)
    intercept_header_auth = models.BooleanField(default=True)
    cookie_domain = models.TextField(blank=True, default="")
    cookie_secret = models.TextField(default=generate_cookie_secret)

    def callback_uris(self) -> list[dict]:
        """The strict redirect URIs the outpost's OIDC login uses."""
        return [{"matching_mode": "strict", "url": url} for url in proxy_provider.callback_urls(self.external_host)]

    @property
    def external_hostname(self) -> str:
        return (urlsplit(self.external_host).hostname or "").lower()

    def set_oauth_defaults(self) -> None:
        """authentik's set_oauth_defaults(), the field part: a confidential client whose redirect URIs are the
        outpost's callbacks, with the claims in the id_token. The scope mappings follow in save()."""
        self.client_type = "confidential"
        self.redirect_uris = self.callback_uris()
        self.include_claims_in_id_token = True

    def kept_relations(self, field_name: str) -> set:
        """Primary keys this provider keeps in the many-to-many ``field_name`` whatever is written to it (the
        blueprint importer adds them to a listed value so that an unchanged blueprint compares equal)."""
        if field_name != "property_mappings":
            return set()
        return set(_default_mappings().values_list("pk", flat=True))

    def save(self, *args, **kwargs):
        self.set_oauth_defaults()
        result = super().save(*args, **kwargs)
        add_default_scope_mappings([self])
        return result

    class Meta:
        verbose_name = "Proxy Provider"
        verbose_name_plural = "Proxy Providers"


def _default_mappings():
    from core.oidc.models import ScopeMapping

    return ScopeMapping.objects.filter(managed__in=DEFAULT_SCOPE_MANAGED)


def add_default_scope_mappings(providers: Iterable[ProxyProvider] | None = None) -> int:
    """Add every existing default scope mapping that ``providers`` (default: all proxy providers) lack; the one
    function every path ends in. Only missing links are added (no signal for an unchanged provider). Returns
    the number of links added."""
    defaults = list(_default_mappings())
    if not defaults:
        return 0  # a database the built-in blueprints have not run on yet: the post_save receiver catches up
    targets = list(ProxyProvider.objects.all() if providers is None else providers)
    through = ProxyProvider.property_mappings.through
    have: dict[int, set] = {}
    for provider_id, mapping_id in through.objects.filter(
            provider_id__in=[p.pk for p in targets], propertymapping_id__in=[m.pk for m in defaults],
    ).values_list("provider_id", "propertymapping_id"):
        have.setdefault(provider_id, set()).add(mapping_id)
    added = 0
    for provider in targets:
        missing = [m for m in defaults if m.pk not in have.get(provider.pk, set())]
        if missing:
            provider.property_mappings.add(*missing)
            added += len(missing)
    return added


def keep_default_scope_mappings(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """``m2m_changed`` on Provider.property_mappings: after a removal or a clear that may have taken a default
    mapping from a proxy provider, put the defaults back."""
    if action not in ("post_remove", "post_clear"):
        return
    if not reverse:  # provider.property_mappings.remove/clear/set
        providers = ProxyProvider.objects.filter(pk=instance.pk)
    elif getattr(instance, "managed", None) in DEFAULT_SCOPE_MANAGED:  # mapping.provider_set.remove/clear
        providers = ProxyProvider.objects.all() if pk_set is None else ProxyProvider.objects.filter(pk__in=pk_set)
    else:
        return
    add_default_scope_mappings(providers)


def default_scope_mapping_saved(sender, instance, created, raw=False, **kwargs) -> None:
    """``post_save`` of a PropertyMapping: a default scope mapping that appears after the proxy providers (a
    user blueprint applied before the built-in ones) is added to each of them."""
    if created and not raw and getattr(instance, "managed", None) in DEFAULT_SCOPE_MANAGED:
        add_default_scope_mappings()
