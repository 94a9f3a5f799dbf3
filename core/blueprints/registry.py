"""authentik's blueprint model names, mapped onto Gatehouse's models.

authentik spreads stages and policies over one Django app each (``authentik_stages_password``);
Gatehouse keeps stages in ``authentik_flows`` and policies in ``authentik_policies``, so those names
are translated here. Any ``<label>.<model>`` of one of our ``authentik_*`` apps works directly.
"""

from __future__ import annotations

from django.apps import apps
from django.db import models

from core.blueprints.tags import BlueprintError

META_APPLY_BLUEPRINT = "authentik_blueprints.metaapplyblueprint"

AUTHENTIK_MODELS: dict[str, str] = {
    "authentik_core.user": "authentik_core.user",
    "authentik_core.group": "authentik_core.group",
    "authentik_core.application": "authentik_core.application",
    "authentik_core.token": "authentik_core.token",
    "authentik_core.propertymapping": "authentik_core.propertymapping",
    "authentik_providers_oauth2.oauth2provider": "authentik_providers_oauth2.oauth2provider",
    "authentik_providers_oauth2.scopemapping": "authentik_providers_oauth2.scopemapping",
    "authentik_providers_proxy.proxyprovider": "authentik_providers_proxy.proxyprovider",
    "authentik_providers_ldap.ldapprovider": "authentik_providers_ldap.ldapprovider",
    "authentik_providers_radius.radiusprovider": "authentik_providers_radius.radiusprovider",
    "authentik_providers_radius.radiusproviderpropertymapping":
        "authentik_providers_radius.radiusproviderpropertymapping",
    "authentik_outposts.outpost": "authentik_outposts.outpost",
    "authentik_crypto.certificatekeypair": "authentik_crypto.certificatekeypair",
    "authentik_policies.policybinding": "authentik_policies.policybinding",
    "authentik_policies_expression.expressionpolicy": "authentik_policies.expressionpolicy",
    "authentik_policies_password.passwordpolicy": "authentik_policies.passwordpolicy",
    "authentik_policies_reputation.reputationpolicy": "authentik_policies.reputationpolicy",
    "authentik_flows.flow": "authentik_flows.flow",
    "authentik_flows.flowstagebinding": "authentik_flows.flowstagebinding",
    "authentik_stages_identification.identificationstage": "authentik_flows.identificationstage",
    "authentik_stages_password.passwordstage": "authentik_flows.passwordstage",
    "authentik_stages_authenticator_validate.authenticatorvalidatestage":
        "authentik_flows.authenticatorvalidatestage",
    "authentik_stages_authenticator_totp.authenticatortotpstage": "authentik_flows.authenticatortotpstage",
    "authentik_stages_authenticator_static.authenticatorstaticstage": "authentik_flows.authenticatorstaticstage",
    "authentik_stages_authenticator_webauthn.authenticatorwebauthnstage":
        "authentik_flows.authenticatorwebauthnstage",
    # authentik's own model is spelled this way (AuthenticateWebAuthnStage); its blueprints use it.
    "authentik_stages_authenticator_webauthn.authenticatewebauthnstage":
        "authentik_flows.authenticatorwebauthnstage",
    "authentik_stages_prompt.prompt": "authentik_flows.prompt",
    "authentik_stages_prompt.promptstage": "authentik_flows.promptstage",
    "authentik_stages_user_write.userwritestage": "authentik_flows.userwritestage",
    "authentik_stages_user_login.userloginstage": "authentik_flows.userloginstage",
    "authentik_stages_user_logout.userlogoutstage": "authentik_flows.userlogoutstage",
    "authentik_stages_consent.consentstage": "authentik_flows.consentstage",
    "authentik_stages_deny.denystage": "authentik_flows.denystage",
    "authentik_stages_email.emailstage": "authentik_flows.emailstage",
}

# Only our authentik_* apps are reachable by their own label: never auth, sessions, admin, ...
_DIRECT_PREFIX = "authentik_"


def known_names() -> list[str]:
    return sorted({*AUTHENTIK_MODELS, META_APPLY_BLUEPRINT})


def get_model(name: str) -> type[models.Model]:
    """The model for an authentik (or our own ``authentik_*``) ``app_label.model`` name."""
    if not isinstance(name, str) or "." not in name:
        raise BlueprintError(f"model {name!r}: expected app_label.model, e.g. authentik_flows.flow")
    key = name.strip().lower()
    target = AUTHENTIK_MODELS.get(key, key)
    label, _, model_name = target.partition(".")
    if label.startswith(_DIRECT_PREFIX) and label != "authentik_blueprints":
        try:
            return apps.get_model(label, model_name)
        except LookupError:
            pass
    raise BlueprintError(f"unknown model {name!r}; known models: {', '.join(known_names())}")


def model_name(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"
