"""Policy engine: bindings (group incl. nested, user, policy), negate, enabled, modes, failure_result,
restricted expressions, password and reputation policies, application access."""

from __future__ import annotations

import pytest

from core.accounts.models import Group, User, UserTypes
from core.events.models import Event
from core.policies import expression
from core.policies.engine import evaluate, user_has_access
from core.policies.models import (
    ExpressionPolicy,
    PasswordPolicy,
    PolicyBinding,
    Reputation,
    ReputationPolicy,
)
from core.policies.types import HttpContext, PolicyRequest

pytestmark = pytest.mark.django_db


def _expr(source: str, name: str | None = None) -> ExpressionPolicy:
    return ExpressionPolicy.objects.create(name=name or f"expr-{ExpressionPolicy.objects.count()}",
                                           expression=source)


def test_no_bindings_allows(app, alice):
    assert user_has_access(alice, app) == (True, [])


def test_group_binding_including_nested_groups(app, alice):
    parent = Group.objects.create(name="staff")
    child = Group.objects.create(name="wiki-editors", parent=parent)
    PolicyBinding.objects.create(target=app, group=parent, order=0)
    assert user_has_access(alice, app)[0] is False
    alice.groups.add(child)
    alice = User.objects.get(pk=alice.pk)
    assert user_has_access(alice, app) == (True, [])


def test_user_binding_and_negate(app, alice):
    bob = User.objects.create_user("bob", "", "pw")
    binding = PolicyBinding.objects.create(target=app, user=alice, order=0)
    assert user_has_access(alice, app)[0] is True
    assert user_has_access(bob, app)[0] is False
    binding.negate = True
    binding.save()
    assert user_has_access(alice, app)[0] is False
    assert user_has_access(bob, app)[0] is True


def test_disabled_binding_ignored(app, alice):
    PolicyBinding.objects.create(target=app, policy=_expr("return False"), order=0, enabled=False)
    assert user_has_access(alice, app)[0] is True


def test_mode_any_and_all(app, alice):
    PolicyBinding.objects.create(target=app, policy=_expr("return True"), order=0)
    PolicyBinding.objects.create(target=app, policy=_expr("return False"), order=1)
    app.policy_engine_mode = "any"
    app.save()
    assert evaluate(app, alice).passing is True
    app.policy_engine_mode = "all"
    app.save()
    assert evaluate(app, alice).passing is False


def test_inactive_and_service_accounts_refused(app, alice):
    alice.is_active = False
    alice.save()
    assert user_has_access(alice, app) == (False, ["user is inactive"])
    svc = User.objects.create(username="svc", type=UserTypes.SERVICE_ACCOUNT)
    assert user_has_access(svc, app)[0] is False
    assert user_has_access(None, app)[0] is False


def test_expression_names_and_messages(app, alice):
    admins = Group.objects.create(name="admins")
    alice.groups.add(admins)
    source = (
        "ak_message('hello ' + request.user.username)\n"
        "if not regex_match(request.user.email, r'@example\\.com$'):\n"
        "    return False\n"
        "if ak_client_ip not in ip_network('10.0.0.0/8'):\n"
        "    return False\n"
        "return ak_is_group_member(request.user, name='admins')"
    )
    PolicyBinding.objects.create(target=app, policy=_expr(source), order=0)
    inside = PolicyRequest(http_request=HttpContext(client_ip="10.1.2.3"))
    outside = PolicyRequest(http_request=HttpContext(client_ip="192.0.2.1"))
    alice = User.objects.get(pk=alice.pk)
    assert user_has_access(alice, app, inside) == (True, ["hello alice"])
    assert user_has_access(alice, app, outside)[0] is False


@pytest.mark.parametrize("source", [
    "return __import__('os').system('true')",
    "return open('/etc/passwd').read()",
    "import os\nreturn True",
    "return ().__class__.__base__.__subclasses__()",
    "return eval('1')",
    "return getattr(request, 'user')",
    "return type(request)",
    "return globals()",
    "return '{0.__init__.__globals__}'.format(request)",
    "f = 'x'.format_map\nreturn True",
])
def test_expression_is_restricted(app, alice, source):
    PolicyBinding.objects.create(target=app, policy=_expr(source), order=0, failure_result=False)
    passing, messages = user_has_access(alice, app)
    assert passing is False
    assert Event.objects.filter(action="policy_exception").exists()


def test_expression_compile_error_names_line():
    with pytest.raises(expression.ExpressionError, match="line 2"):
        expression.compile_expression("x = 1\nreturn (")
    with pytest.raises(expression.ExpressionError, match="_secret"):
        expression.compile_expression("return request._secret")


def test_failure_result_on_exception(app, alice):
    binding = PolicyBinding.objects.create(target=app, policy=_expr("return 1 / 0"), order=0, failure_result=True)
    assert user_has_access(alice, app)[0] is True
    event = Event.objects.get(action="policy_exception")
    assert "ZeroDivisionError" in event.context["message"]
    binding.failure_result = False
    binding.save()
    assert user_has_access(alice, app)[0] is False


def test_expression_timeout(app, alice):
    binding = PolicyBinding.objects.create(target=app, policy=_expr("while True:\n    pass"), order=0, timeout=1)
    assert user_has_access(alice, app)[0] is False
    assert "timeout" in Event.objects.get(action="policy_exception").context["message"]
    assert binding.failure_result is False


def _pw_request(password: str) -> PolicyRequest:
    return PolicyRequest(context={"prompt_data": {"password": password}})


def test_password_policy(app):
    policy = PasswordPolicy.objects.create(name="pw", length_min=10, amount_uppercase=1, amount_digits=2,
                                           amount_symbols=1)
    PolicyBinding.objects.create(target=app, policy=policy, order=0)
    weak = evaluate(app, None, _pw_request("short"))
    assert weak.passing is False
    assert any("at least 10 characters" in m for m in weak.messages)
    assert any("digits" in m for m in weak.messages)
    assert evaluate(app, None, _pw_request("Longenough12!")).passing is True
    policy.error_message = "Too weak."
    policy.save()
    assert evaluate(app, None, _pw_request("short")).messages == ("Too weak.",)
    assert evaluate(app, None, PolicyRequest()).passing is False


def test_reputation_policy(app, alice):
    policy = ReputationPolicy.objects.create(name="rep", threshold=-3)
    PolicyBinding.objects.create(target=app, policy=policy, order=0)
    ctx = PolicyRequest(http_request=HttpContext(client_ip="192.0.2.5"))
    assert evaluate(app, alice, ctx).passing is True
    Reputation.objects.create(identifier="alice", ip="192.0.2.99", score=-3)
    assert evaluate(app, alice, PolicyRequest(http_request=HttpContext(client_ip="192.0.2.5"))).passing is False
    policy.check_username = False
    policy.save()
    assert evaluate(app, alice, PolicyRequest(http_request=HttpContext(client_ip="192.0.2.5"))).passing is True
    assert evaluate(app, alice, PolicyRequest(http_request=HttpContext(client_ip="192.0.2.99"))).passing is False


def test_api_access_module_uses_engine(app, alice):
    from core.api.access import user_has_access as api_access

    PolicyBinding.objects.create(target=app, policy=_expr("return request.user.username == 'alice'"), order=0)
    assert api_access(alice, app) == (True, [])
