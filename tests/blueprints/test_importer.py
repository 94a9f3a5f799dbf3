"""Entry semantics: states, identifiers, special attributes, m2m, errors, idempotency."""

import pytest
from django.contrib.auth.hashers import check_password

from core.accounts.models import Application, Group, Token, User
from core.blueprints import registry
from core.blueprints.tags import BlueprintError
from core.flows import models as flows
from core.oidc.models import OAuth2Provider, ScopeMapping
from core.outposts.models import Outpost
from core.policies import models as policies
from core.providers.ldap.models import LDAPProvider
from core.providers.proxy.models import ProxyProvider
from core.providers.radius.models import RadiusProvider
from tests.blueprints.conftest import apply_text, watch_signals

pytestmark = pytest.mark.django_db

MAPPING = {
    "authentik_core.user": User,
    "authentik_core.group": Group,
    "authentik_core.application": Application,
    "authentik_core.token": Token,
    "authentik_providers_oauth2.oauth2provider": OAuth2Provider,
    "authentik_providers_oauth2.scopemapping": ScopeMapping,
    "authentik_providers_proxy.proxyprovider": ProxyProvider,
    "authentik_providers_ldap.ldapprovider": LDAPProvider,
    "authentik_providers_radius.radiusprovider": RadiusProvider,
    "authentik_outposts.outpost": Outpost,
    "authentik_policies.policybinding": policies.PolicyBinding,
    "authentik_policies_expression.expressionpolicy": policies.ExpressionPolicy,
    "authentik_policies_password.passwordpolicy": policies.PasswordPolicy,
    "authentik_policies_reputation.reputationpolicy": policies.ReputationPolicy,
    "authentik_flows.flow": flows.Flow,
    "authentik_flows.flowstagebinding": flows.FlowStageBinding,
    "authentik_stages_identification.identificationstage": flows.IdentificationStage,
    "authentik_stages_password.passwordstage": flows.PasswordStage,
    "authentik_stages_authenticator_validate.authenticatorvalidatestage": flows.AuthenticatorValidateStage,
    "authentik_stages_authenticator_totp.authenticatortotpstage": flows.AuthenticatorTOTPStage,
    "authentik_stages_authenticator_static.authenticatorstaticstage": flows.AuthenticatorStaticStage,
    "authentik_stages_authenticator_webauthn.authenticatorwebauthnstage": flows.AuthenticatorWebAuthnStage,
    "authentik_stages_authenticator_webauthn.authenticatewebauthnstage": flows.AuthenticatorWebAuthnStage,
    "authentik_stages_prompt.prompt": flows.Prompt,
    "authentik_stages_prompt.promptstage": flows.PromptStage,
    "authentik_stages_user_write.userwritestage": flows.UserWriteStage,
    "authentik_stages_user_login.userloginstage": flows.UserLoginStage,
    "authentik_stages_user_logout.userlogoutstage": flows.UserLogoutStage,
    "authentik_stages_consent.consentstage": flows.ConsentStage,
    "authentik_stages_deny.denystage": flows.DenyStage,
    "authentik_stages_email.emailstage": flows.EmailStage,
}

# One entry per authentik model name, with the attributes each needs; applied as one blueprint.
KITCHEN_SINK = """
version: 1
metadata: {name: every model}
entries:
  - {model: authentik_core.user, id: user, identifiers: {username: ks-user}}
  - {model: authentik_core.group, id: group, identifiers: {name: ks-group}}
  - {model: authentik_crypto.certificatekeypair, identifiers: {name: ks-cert}, attrs: {certificate_data: PEM}}
  - {model: authentik_core.token, identifiers: {identifier: ks-token}, attrs: {user: !KeyOf user, intent: api}}
  - {model: authentik_providers_oauth2.oauth2provider, id: oauth, identifiers: {name: ks-oauth}}
  - {model: authentik_providers_oauth2.scopemapping, identifiers: {managed: ks/scope}, attrs: {name: ks-scope, scope_name: ks}}
  - {model: authentik_providers_proxy.proxyprovider, id: proxy, identifiers: {name: ks-proxy}, attrs: {external_host: "https://app.example.com"}}
  - {model: authentik_providers_ldap.ldapprovider, id: ldap, identifiers: {name: ks-ldap}}
  - {model: authentik_providers_radius.radiusprovider, identifiers: {name: ks-radius}}
  - {model: authentik_core.application, id: app, identifiers: {slug: ks-app}, attrs: {name: KS, provider: !KeyOf oauth}}
  - {model: authentik_outposts.outpost, identifiers: {name: ks-outpost}, attrs: {type: ldap, providers: [!KeyOf ldap]}}
  - {model: authentik_policies_expression.expressionpolicy, id: expr, identifiers: {name: ks-expr}, attrs: {expression: return True}}
  - {model: authentik_policies_password.passwordpolicy, identifiers: {name: ks-password}, attrs: {length_min: 12}}
  - {model: authentik_policies_reputation.reputationpolicy, identifiers: {name: ks-reputation}}
  - {model: authentik_policies.policybinding, identifiers: {target: !KeyOf app, order: 0}, attrs: {policy: !KeyOf expr}}
  - {model: authentik_flows.flow, id: flow, identifiers: {slug: ks-flow}, attrs: {name: KS, designation: authentication}}
  - {model: authentik_stages_identification.identificationstage, id: ident, identifiers: {name: ks-ident}}
  - {model: authentik_stages_password.passwordstage, identifiers: {name: ks-password-stage}}
  - {model: authentik_stages_authenticator_validate.authenticatorvalidatestage, identifiers: {name: ks-validate}}
  - {model: authentik_stages_authenticator_totp.authenticatortotpstage, identifiers: {name: ks-totp}}
  - {model: authentik_stages_authenticator_static.authenticatorstaticstage, identifiers: {name: ks-static}}
  - {model: authentik_stages_authenticator_webauthn.authenticatorwebauthnstage, identifiers: {name: ks-webauthn}}
  - {model: authentik_stages_authenticator_webauthn.authenticatewebauthnstage, identifiers: {name: ks-webauthn}}
  - {model: authentik_stages_prompt.prompt, id: prompt, identifiers: {name: ks-prompt}, attrs: {field_key: username}}
  - {model: authentik_stages_prompt.promptstage, identifiers: {name: ks-prompt-stage}, attrs: {fields: [!KeyOf prompt]}}
  - {model: authentik_stages_user_write.userwritestage, identifiers: {name: ks-write}}
  - {model: authentik_stages_user_login.userloginstage, identifiers: {name: ks-login}}
  - {model: authentik_stages_user_logout.userlogoutstage, identifiers: {name: ks-logout}}
  - {model: authentik_stages_consent.consentstage, identifiers: {name: ks-consent}}
  - {model: authentik_stages_deny.denystage, identifiers: {name: ks-deny}}
  - {model: authentik_stages_email.emailstage, identifiers: {name: ks-email}}
  - {model: authentik_flows.flowstagebinding, identifiers: {target: !KeyOf flow, stage: !KeyOf ident, order: 10}}
"""


@pytest.mark.parametrize("name", sorted(MAPPING))
def test_authentik_model_name_maps_to_ours(name):
    assert registry.get_model(name) is MAPPING[name]
    assert registry.get_model(name.upper()) is MAPPING[name]


def test_our_own_labels_work_directly():
    assert registry.get_model("authentik_flows.passwordstage") is flows.PasswordStage
    assert registry.get_model("authentik_policies.expressionpolicy") is policies.ExpressionPolicy
    for forbidden in ("auth.permission", "sessions.session", "authentik_blueprints.blueprintinstance"):
        with pytest.raises(BlueprintError, match="unknown model"):
            registry.get_model(forbidden)


def test_every_model_applies_and_reapplies_without_writes():
    result = apply_text(KITCHEN_SINK)
    assert result.counts["created"] == 31 and result.counts["unchanged"] == 1  # webauthn alias: same row
    for model in set(MAPPING.values()):
        assert model.objects.exists(), model
    assert Outpost.objects.get(name="ks-outpost").providers.get().name == "ks-ldap"
    assert list(flows.PromptStage.objects.get(name="ks-prompt-stage").fields.values_list("field_key", flat=True)) == ["username"]
    with watch_signals() as fired:
        again = apply_text(KITCHEN_SINK)
    assert fired == []
    assert again.counts["unchanged"] == 32 and not again.changed


def test_unknown_model_names_entry_model_and_known_list():
    with pytest.raises(BlueprintError) as err:
        apply_text("version: 1\nentries:\n  - {model: authentik_core.group, identifiers: {name: a}}\n"
                   "  - {model: authentik_sources_saml.samlsource, identifiers: {name: s}}\n")
    message = str(err.value)
    assert "entry 1 (authentik_sources_saml.samlsource" in message
    assert "unknown model 'authentik_sources_saml.samlsource'" in message
    assert "authentik_stages_prompt.promptstage" in message
    assert not Group.objects.filter(name="a").exists()  # rolled back


def test_unknown_field_is_named_and_everything_rolls_back():
    text = """
version: 1
entries:
  - {model: authentik_core.group, identifiers: {name: first}}
  - {model: authentik_flows.flow, identifiers: {slug: f}, attrs: {name: F, designation: authentication, colour: red}}
"""
    with pytest.raises(BlueprintError) as err:
        apply_text(text)
    message = str(err.value)
    assert message.startswith("entry 1 (authentik_flows.flow, identifiers {'slug': 'f'}): field 'colour'")
    assert "known fields:" in message and "designation" in message
    assert not Group.objects.exists() and not flows.Flow.objects.exists()


def test_invalid_choice_and_missing_reference_are_errors():
    with pytest.raises(BlueprintError, match=r"entry 0 .*field 'designation': Value 'nope' is not a valid choice"):
        apply_text("version: 1\nentries:\n  - {model: authentik_flows.flow, identifiers: {slug: f}, "
                   "attrs: {name: F, designation: nope}}\n")
    with pytest.raises(BlueprintError, match=r"field 'fields': no authentik_flows.prompt with pk"):
        apply_text("version: 1\nentries:\n  - {model: authentik_stages_prompt.promptstage, identifiers: {name: p}, "
                   "attrs: {fields: [00000000-0000-0000-0000-000000000001]}}\n")
    with pytest.raises(BlueprintError, match=r"field 'groups': a reference resolved to nothing"):
        # A foreign key given a !Find that matched nothing is an explicit null; in a list it is an error.
        apply_text("version: 1\nentries:\n  - {model: authentik_core.user, identifiers: {username: u}, "
                   "attrs: {groups: [!Find [authentik_core.group, [name, none]]]}}\n")
    with pytest.raises(BlueprintError, match=r"entry 0 .*field 'parent': Group instance with group_uuid .* is not a valid choice"):
        apply_text("version: 1\nentries:\n  - {model: authentik_core.group, identifiers: {name: g}, "
                   "attrs: {parent: 00000000-0000-0000-0000-000000000001}}\n")
    with pytest.raises(BlueprintError, match=r"field 'parent': 'not-a-uuid' is not a primary key"):
        apply_text("version: 1\nentries:\n  - {model: authentik_core.group, identifiers: {name: g}, "
                   "attrs: {parent: not-a-uuid}}\n")


def test_user_password_is_hashed_and_only_rewritten_when_it_differs():
    text = """
version: 1
entries:
  - {model: authentik_core.group, id: admins, identifiers: {name: admins}, attrs: {is_superuser: true}}
  - {model: authentik_core.group, identifiers: {name: staff}}
  - model: authentik_core.user
    identifiers: {username: alice}
    attrs:
      name: Alice
      email: alice@example.com
      password: !Env [BP_ALICE_PASSWORD, correct horse]
      groups: [!KeyOf admins, staff]
"""
    apply_text(text)
    alice = User.objects.get(username="alice")
    assert alice.password.startswith("argon2") and "correct horse" not in alice.password
    assert check_password("correct horse", alice.password)
    assert sorted(g.name for g in alice.groups.all()) == ["admins", "staff"]
    assert alice.is_superuser
    stored = alice.password
    with watch_signals() as fired:
        assert not apply_text(text).changed
    assert fired == [] and User.objects.get(username="alice").password == stored
    apply_text(text, env={"BP_ALICE_PASSWORD": "battery staple"})
    assert User.objects.get(username="alice").check_password("battery staple")


def test_user_without_password_is_unusable_and_groups_can_shrink():
    apply_text("""
version: 1
entries:
  - {model: authentik_core.group, identifiers: {name: g1}}
  - {model: authentik_core.group, identifiers: {name: g2}}
  - {model: authentik_core.user, identifiers: {username: bob}, attrs: {groups: [g1, g2]}}
""")
    bob = User.objects.get(username="bob")
    assert not bob.has_usable_password() and bob.groups.count() == 2
    apply_text("version: 1\nentries:\n  - {model: authentik_core.user, identifiers: {username: bob}, attrs: {groups: [g2]}}\n")
    assert [g.name for g in bob.groups.all()] == ["g2"]
    with pytest.raises(BlueprintError, match="no group 'ghosts'"):
        apply_text("version: 1\nentries:\n  - {model: authentik_core.user, identifiers: {username: bob}, attrs: {groups: [ghosts]}}\n")


def test_password_hash_and_token_key():
    from django.contrib.auth.hashers import make_password

    hashed = make_password("pre-hashed")
    apply_text(f"""
version: 1
entries:
  - {{model: authentik_core.user, id: u, identifiers: {{username: carol}}, attrs: {{password_hash: '{hashed}'}}}}
  - model: authentik_core.token
    identifiers: {{identifier: carol-api}}
    attrs: {{key: a-very-long-token-value-0123456789, user: !KeyOf u, intent: api, expiring: false}}
""")
    assert User.objects.get(username="carol").check_password("pre-hashed")
    token = Token.authenticate("a-very-long-token-value-0123456789", ("api",))
    assert token is not None and token.user.username == "carol"


def test_m2m_set_after_save_and_only_when_different():
    text = """
version: 1
entries:
  - {model: authentik_providers_proxy.proxyprovider, id: p1, identifiers: {name: p1}, attrs: {external_host: "https://a.example"}}
  - {model: authentik_providers_proxy.proxyprovider, id: p2, identifiers: {name: p2}, attrs: {external_host: "https://b.example"}}
  - {model: authentik_outposts.outpost, identifiers: {name: o}, attrs: {type: proxy, providers: [!KeyOf p1, !KeyOf p2]}}
"""
    apply_text(text)
    outpost = Outpost.objects.get(name="o")
    assert sorted(p.name for p in outpost.providers.all()) == ["p1", "p2"]
    with watch_signals() as fired:
        apply_text(text)
    assert fired == []
    with watch_signals() as fired:
        apply_text(text.replace(", !KeyOf p2]", "]"))
    assert [p.name for p in outpost.providers.all()] == ["p1"]
    assert ("post_save", "Outpost", None) not in fired  # only the m2m changed, the row was not saved
    assert any(f[0] == "m2m_changed" for f in fired)


def test_through_m2m_is_refused():
    with pytest.raises(BlueprintError, match="set through authentik_flows.flowstagebinding"):
        apply_text("version: 1\nentries:\n  - {model: authentik_flows.flow, identifiers: {slug: f}, "
                   "attrs: {name: F, designation: authentication, stages: []}}\n")


def test_states_present_created_must_created_absent():
    base = "version: 1\nentries:\n  - {{model: authentik_core.group, state: {state}, identifiers: {{name: g}}, attrs: {{attributes: {{v: {v}}}}}}}\n"
    assert apply_text(base.format(state="present", v=1)).counts["created"] == 1
    assert apply_text(base.format(state="present", v=2)).counts["updated"] == 1
    assert Group.objects.get(name="g").attributes == {"v": 2}
    assert apply_text(base.format(state="created", v=3)).counts["unchanged"] == 1
    assert Group.objects.get(name="g").attributes == {"v": 2}
    with pytest.raises(BlueprintError, match="must_created, but the object exists"):
        apply_text(base.format(state="must_created", v=4))
    assert apply_text(base.format(state="absent", v=0)).counts["deleted"] == 1
    assert not Group.objects.filter(name="g").exists()
    assert apply_text(base.format(state="absent", v=0)).counts["unchanged"] == 1
    assert apply_text(base.format(state="must_created", v=5)).counts["created"] == 1


def test_absent_subclass_deletes_the_whole_row():
    apply_text("version: 1\nentries:\n  - {model: authentik_stages_deny.denystage, identifiers: {name: d}}\n")
    apply_text("version: 1\nentries:\n  - {model: authentik_stages_deny.denystage, state: absent, identifiers: {name: d}}\n")
    assert not flows.Stage.objects.filter(name="d").exists()


def test_identifiers_pk_or_fields_and_json_contains():
    group = Group.objects.create(name="old-name", attributes={"team": {"id": 7}, "x": 1})
    apply_text(f"version: 1\nentries:\n  - {{model: authentik_core.group, identifiers: {{pk: '{group.pk}', name: other}}, attrs: {{name: new-name}}}}\n")
    assert Group.objects.get(pk=group.pk).name == "new-name"
    apply_text("version: 1\nentries:\n  - {model: authentik_core.group, identifiers: {attributes: {team: {id: 7}}}, attrs: {is_superuser: true}}\n")
    assert Group.objects.get(pk=group.pk).is_superuser
    Group.objects.create(name="twin", attributes={"team": {"id": 7}})
    with pytest.raises(BlueprintError, match="identifiers match 2 objects"):
        apply_text("version: 1\nentries:\n  - {model: authentik_core.group, identifiers: {attributes: {team: {id: 7}}}}\n")


def test_identifiers_are_required():
    with pytest.raises(BlueprintError, match="identifiers are required"):
        apply_text("version: 1\nentries:\n  - {model: authentik_core.group, attrs: {name: x}}\n")


def test_update_writes_only_attrs():
    flows.Flow.objects.create(slug="f", name="Old", title="Keep me", designation="authentication")
    apply_text("version: 1\nentries:\n  - {model: authentik_flows.flow, identifiers: {slug: f}, attrs: {name: New}}\n")
    flow = flows.Flow.objects.get(slug="f")
    assert (flow.name, flow.title) == ("New", "Keep me")


def test_authentik_aliases_and_ignored_fields():
    result = apply_text("""
version: 1
entries:
  - {model: authentik_core.application, identifiers: {slug: a}, attrs: {name: A, icon: "https://x/icon.png"}}
  - {model: authentik_stages_prompt.prompt, identifiers: {name: p}, attrs: {field_key: k, prompt_type: email}}
  - {model: authentik_policies_password.passwordpolicy, identifiers: {name: pp}, attrs: {check_zxcvbn: true, length_min: 9}}
  - model: authentik_stages_identification.identificationstage
    identifiers: {name: ident}
    attrs: {user_fields: [email, username], template: stages/identification/login.html}
""")
    assert Application.objects.get(slug="a").meta_icon == "https://x/icon.png"
    assert flows.Prompt.objects.get(name="p").type == "email"
    assert policies.PasswordPolicy.objects.get(name="pp").length_min == 9
    assert any("check_zxcvbn" in w for w in result.warnings)
    assert any("identificationstage.template" in w for w in result.warnings)


def test_embedded_outpost_entry_by_managed_identifier():
    text = """
version: 1
entries:
  - model: authentik_outposts.outpost
    identifiers: {managed: goauthentik.io/outposts/embedded}
    attrs: {name: authentik Embedded Outpost, type: proxy, config: {authentik_host: ""}}
"""
    apply_text(text)
    outpost = Outpost.objects.get(managed="goauthentik.io/outposts/embedded")
    assert outpost.name == "authentik Embedded Outpost" and outpost.config == {"authentik_host": ""}
    assert Token.objects.filter(identifier=outpost.token_identifier).exists()  # its post_save ran once
    with watch_signals() as fired:
        apply_text(text)
    assert fired == []


def test_meta_apply_blueprint():
    from core.blueprints.models import BlueprintInstance

    text = """
version: 1
entries:
  - model: authentik_blueprints.metaapplyblueprint
    attrs: {identifiers: {name: Other}, required: %s}
  - {model: authentik_core.group, identifiers: {name: after-meta}}
"""
    assert apply_text(text % "false").counts["skipped"] == 1
    with pytest.raises(BlueprintError, match="must be applied before this one"):
        apply_text(text % "true")
    BlueprintInstance.objects.create(name="Other", status="successful")
    assert apply_text(text % "true").counts["unchanged"] == 2
