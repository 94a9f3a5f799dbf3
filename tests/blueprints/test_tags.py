"""Every YAML tag of authentik's blueprint format (website/docs/customize/blueprints/v1/tags.mdx)."""

import pytest

from core.accounts.models import Group
from core.blueprints.loader import load
from core.blueprints.tags import BlueprintError
from tests.blueprints.conftest import apply_text

pytestmark = pytest.mark.django_db


def group_attrs(value_yaml: str, context: str = "{}", env=None):
    """Apply one group entry whose attributes.v is ``value_yaml``; return the stored value."""
    apply_text(f"""
version: 1
metadata: {{name: t}}
context: {context}
entries:
  - model: authentik_core.group
    identifiers: {{name: g}}
    attrs:
      attributes:
        v: {value_yaml}
""", env=env or {})
    return Group.objects.get(name="g").attributes["v"]


def test_keyof_is_the_pk_of_an_earlier_entry():
    apply_text("""
version: 1
entries:
  - model: authentik_core.group
    id: parent
    identifiers: {name: parent}
  - model: authentik_core.group
    identifiers: {name: child}
    attrs: {parent: !KeyOf parent}
""")
    assert Group.objects.get(name="child").parent == Group.objects.get(name="parent")


def test_keyof_unknown_id_names_entry_and_id():
    with pytest.raises(BlueprintError, match=r"entry 0 \(authentik_core.group.*!KeyOf 'nope': no earlier entry"):
        apply_text("""
version: 1
entries:
  - model: authentik_core.group
    identifiers: {name: child}
    attrs: {parent: !KeyOf nope}
""")


def test_find_returns_pk_or_none():
    parent = Group.objects.create(name="existing")
    apply_text("""
version: 1
entries:
  - model: authentik_core.group
    identifiers: {name: a}
    attrs:
      parent: !Find [authentik_core.group, [name, existing]]
      attributes:
        missing: !Find [authentik_core.group, [name, nothing-here]]
""")
    a = Group.objects.get(name="a")
    assert a.parent == parent
    assert a.attributes == {"missing": None}


def test_find_with_context_keys_and_authentik_model_name():
    apply_text("""
version: 1
context: {field: slug, value: f1}
entries:
  - model: authentik_flows.flow
    identifiers: {slug: f1}
    attrs: {name: F, designation: authentication}
  - model: authentik_stages_password.passwordstage
    identifiers: {name: pw}
    attrs:
      configure_flow: !Find [authentik_flows.flow, [!Context field, !Context value]]
""")
    from core.flows.models import PasswordStage

    assert PasswordStage.objects.get(name="pw").configure_flow.slug == "f1"


def test_find_bad_field_is_an_error():
    with pytest.raises(BlueprintError, match="!Find"):
        group_attrs("!Find [authentik_core.group, [colour, red]]")


def test_env_scalar_and_default():
    assert group_attrs("!Env BP_TEST_VAR", env={"BP_TEST_VAR": "x1"}) == "x1"
    assert group_attrs("!Env BP_TEST_MISSING", env={}) is None
    assert group_attrs("!Env [BP_TEST_MISSING, fallback]", env={}) == "fallback"
    assert group_attrs("!Env [BP_TEST_EMPTY, fallback]", env={"BP_TEST_EMPTY": ""}) == "fallback"


def test_env_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("BP_TEST_PROCESS", "from-env")
    apply_text("""
version: 1
entries:
  - model: authentik_core.group
    identifiers: {name: !Env BP_TEST_PROCESS}
""")
    assert Group.objects.filter(name="from-env").exists()


def test_context_key_default_nested_and_instance_override():
    ctx = "{a: 1, nested: {list: [x, y]}, 'dotted.key': plain}"
    assert group_attrs("!Context a", ctx) == 1
    assert group_attrs("!Context nested.list.1", ctx) == "y"
    assert group_attrs("!Context dotted.key", ctx) == "plain"
    assert group_attrs("!Context [absent, dflt]", ctx) == "dflt"
    assert group_attrs("!Context absent", ctx) is None
    apply_text("""
version: 1
context: {n: from-file}
entries:
  - model: authentik_core.group
    identifiers: {name: !Context n}
""", context={"n": "from-instance"})
    assert Group.objects.filter(name="from-instance").exists()


def test_format():
    assert group_attrs("!Format ['app-%s-%d', !Context n, 7]", "{n: x}") == "app-x-7"


def test_format_mismatch_is_an_error():
    with pytest.raises(BlueprintError, match="!Format"):
        group_attrs("!Format ['%s %s', one]")


def test_if_short_and_long_forms():
    assert group_attrs("!If [yes]") is True
    assert group_attrs("!If ['']") is False
    assert group_attrs("!If [!Context flag, {k: !Format ['%s!', hi]}, [no]]", "{flag: true}") == {"k": "hi!"}
    assert group_attrs("!If [!Context flag, a, [b, !Context flag]]", "{flag: 0}") == ["b", 0]


@pytest.mark.parametrize(("expr", "expected"), [
    ("[AND, true, 1, x]", True), ("[AND, true, 0]", False),
    ("[NAND, true, 0]", True), ("[OR, 0, '', 1]", True), ("[NOR, 0, '']", True),
    ("[XOR, true, true]", False), ("[XOR, true, false]", True), ("[XNOR, true, true]", True),
    ("[OR, true]", True), ("[NOR, true]", False),
])
def test_condition_modes(expr, expected):
    assert group_attrs(f"!Condition {expr}") is expected


def test_condition_bad_mode():
    with pytest.raises(BlueprintError, match="mode 'MAYBE'"):
        group_attrs("!Condition [MAYBE, true]")


def test_entry_conditions_skip_the_entry():
    result = apply_text("""
version: 1
entries:
  - model: authentik_core.group
    identifiers: {name: skipped}
    conditions: [true, !Condition [AND, !Env BP_NOPE]]
  - model: authentik_core.group
    identifiers: {name: kept}
    conditions: [1, !If [x]]
""", env={})
    assert not Group.objects.filter(name="skipped").exists()
    assert Group.objects.filter(name="kept").exists()
    assert result.counts["skipped"] == 1


def test_enumerate_seq_map_and_nested():
    assert group_attrs("!Enumerate [[a, b], SEQ, !Format ['%s=%s', !Index 0, !Value 0]]") == ["0=a", "1=b"]
    assert group_attrs("!Enumerate [{k1: v1}, MAP, [!Value 0, !Index 0]]") == {"v1": "k1"}
    nested = "!Enumerate [[ab], MAP, [!Index 0, !Enumerate [!Value 1, SEQ, !Format ['%s:%s', !Value 1, !Value 0]]]]"
    assert group_attrs(nested) == {"0": ["ab:a", "ab:b"]}  # JSON keys are strings


def test_index_outside_enumerate_is_an_error():
    with pytest.raises(BlueprintError, match="only valid inside !Enumerate"):
        group_attrs("!Index 0")


def test_at_index_and_file(tmp_path):
    assert group_attrs("!AtIndex [[a, b], 1]") == "b"
    assert group_attrs("!AtIndex [{k: v}, k]") == "v"
    assert group_attrs("!AtIndex [[a], 5, dflt]") == "dflt"
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    assert group_attrs(f"!File {secret}") == "s3cret"
    assert group_attrs(f"!File [{tmp_path / 'none'}, dflt]") == "dflt"


def test_python_objects_are_refused():
    with pytest.raises(BlueprintError, match="not valid YAML"):
        load("version: 1\nentries: !!python/object/apply:os.system [echo hi]\n")


@pytest.mark.parametrize(("text", "message"), [
    ("version: 2\nentries: []", "version 2 is not supported"),
    ("version: 1", "entries must be a list"),
    ("version: 1\nentries: [{identifiers: {name: x}}]", "entry 0: model is required"),
    ("version: 1\nentries: [{model: authentik_core.group, state: maybe}]", "state 'maybe'"),
    ("version: 1\nentries: [{model: authentik_core.group, atrs: {}}]", "unknown key"),
    ("version: 1\nentries: [{model: authentik_core.group, attrs: {a: !If [1, 2]}}]", "!If takes"),
    ("version: 1\nentries: [{model: authentik_core.group, attrs: {a: !Find [m, notapair]}}]", "pair"),
    ("version: 1\nentries: [\n", "not valid YAML"),
])
def test_structure_errors(text, message):
    with pytest.raises(BlueprintError, match=message):
        load(text)
