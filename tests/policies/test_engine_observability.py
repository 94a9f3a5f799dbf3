"""The policy engine's debug lines and timings (issue 8 items 15, 16): one line per binding and per result, with
the reasons; bulk evaluations (an outpost's access lists) only at trace; no extra query for either."""

from __future__ import annotations

import logging

import pytest

from core.accounts.models import Application, Group, User
from core.metrics import engine_metrics
from core.policies.engine import load_bindings, user_has_access
from core.policies.models import ExpressionPolicy, PolicyBinding
from outpost.logs import TRACE

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(db) -> Application:
    app = Application.objects.create(name="Wiki", slug="wiki")
    policy = ExpressionPolicy.objects.create(name="office-hours", expression="ak_message('closed')\nreturn False")
    PolicyBinding.objects.create(target=app, policy=policy, order=3)
    PolicyBinding.objects.create(target=app, group=Group.objects.create(name="staff"), order=4)
    return app


def lines(caplog, event):
    return [r for r in caplog.records if r.name == "gatehouse.policies" and r.getMessage() == event]


def test_one_users_check_logs_each_binding_and_the_result_at_debug(app, caplog):
    alice = User.objects.create_user("alice", "alice@example.com", "pw")
    with caplog.at_level(logging.DEBUG, logger="gatehouse"):
        assert user_has_access(alice, app) == (False, ["closed"])
    bindings = lines(caplog, "policy binding")
    assert [(r.levelno, r.order, getattr(r, "policy", None), getattr(r, "group", None), r.passing, r.messages)
            for r in bindings] == [
        (logging.DEBUG, 3, "office-hours", None, False, ["closed"]),
        (logging.DEBUG, 4, None, str(Group.objects.get(name="staff").pk), False, [])]
    result = lines(caplog, "policy result")
    assert len(result) == 1 and result[0].target == "Application wiki" and result[0].passing is False
    assert result[0].messages == ["closed"] and result[0].user == "alice"


def test_bulk_evaluations_log_only_at_trace(app, caplog):
    users = [User.objects.create_user(f"u{i}", f"u{i}@example.com", "pw") for i in range(3)]
    bindings = load_bindings(app)
    with caplog.at_level(logging.DEBUG, logger="gatehouse"):
        for user in users:
            user_has_access(user, app, bindings=bindings)
    assert not lines(caplog, "policy binding") and not lines(caplog, "policy result")
    with caplog.at_level(TRACE, logger="gatehouse"):
        user_has_access(users[0], app, bindings=bindings)
    assert {r.levelno for r in lines(caplog, "policy result")} == {TRACE}


def test_logging_and_timing_cost_no_query(app, django_assert_num_queries):
    alice = User.objects.create_user("alice", "alice@example.com", "pw")
    alice.all_groups()  # cached on the instance
    bindings = load_bindings(app)
    logger = logging.getLogger("gatehouse")
    previous = logger.level
    logger.setLevel(TRACE)  # every line on
    try:
        with django_assert_num_queries(0):
            user_has_access(alice, app, bindings=bindings)
            user_has_access(alice, app, bindings=bindings)
    finally:
        logger.setLevel(previous)
    timed = engine_metrics().registry.get_sample_value(
        "authentik_policies_execution_time_count",
        {"binding_order": "3", "binding_target_type": "policy", "binding_target_name": "office-hours",
         "object_pk": str(app.pk), "object_type": "authentik.core.models.Application", "mode": "execute_process"})
    assert timed and timed >= 2
