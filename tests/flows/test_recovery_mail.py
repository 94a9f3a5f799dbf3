"""Issue 8 item 10: the recovery flow's email stage neither leaks nor floods.

THREATS "Account enumeration by work": a known name and an unknown one cost the same database work
(queries, rows written) and get byte-for-byte the same answer, also while the mail server is down; the mail
is sent later by a sender nobody waits for, which retries with backoff. THREATS "Mail flood": re-sends are
limited per name typed, per client address and per user.

No timing thresholds: the work is compared by what it does.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.accounts.models import User
from core.flows import models as fm
from core.flows.models import FlowToken
from core.mail import outbox
from core.mail.delivery import BACKOFF_FIRST, drain_once
from core.mail.models import FlowLinkMail, MailState
from core.system.models import SystemSettings
from tests.support.smtp import SmtpSink, body_text

pytestmark = pytest.mark.django_db
BASE = "https://auth.example.test"
SLUG = "default-recovery-flow"
URL = f"/api/v3/flows/executor/{SLUG}/?query="
LITERALS = re.compile(r"'[^']*'|\b\d+\b|\bNULL\b|\"s\d+_x\d+\"")  # values, pks, savepoint names


@pytest.fixture
def recovery(flows):
    """The default recovery blueprint's shape (policies re-evaluated at the email stage, as it has them)."""
    SystemSettings(base_url=BASE).save()
    ident = fm.IdentificationStage.objects.create(name="rec-ident", user_fields=["email", "username"])
    email = fm.EmailStage.objects.create(name="rec-email", subject="Reset your password")
    prompt = fm.PromptStage.objects.create(name="rec-prompt")
    prompt.fields.add(*flows.password_prompts("rec"))
    flow = flows.flow(SLUG, "recovery", [ident, email, prompt, fm.UserWriteStage.objects.create(name="rec-write")])
    fm.FlowStageBinding.objects.filter(target=flow).update(evaluate_on_plan=True, re_evaluate_policies=True)
    return flow


@pytest.fixture
def closed_port_smtp(settings):
    """A mail server that is down: SMTP on a port where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    return settings


def ask(name: str, client: Client | None = None, ip: str = "198.51.100.7"):
    """The two requests of a reset as the flow page's script sends them: the name, then the email stage
    (the executor's 302 after the identification). Returns (status, body) of each and the queries made."""
    client = client or Client(REMOTE_ADDR=ip)
    assert client.get(URL).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        first = client.post(URL, data={"component": "ak-stage-identification", "uid_field": name},
                            content_type="application/json")
        second = client.get(URL)
    answers = [(first.status_code, first.content), (second.status_code, second.content)]
    return answers, [LITERALS.sub("?", q["sql"]) for q in queries.captured_queries]


def rows() -> dict[str, int]:
    return {"mail": FlowLinkMail.objects.count(), "tokens": FlowToken.objects.count(),
            "users": User.objects.count()}


def test_known_and_unknown_names_do_the_same_work(recovery, alice):
    before = rows()
    known_answers, known_queries = ask("alice@example.com")
    after_known = rows()
    unknown_answers, unknown_queries = ask("nobody@example.com")
    after_unknown = rows()
    assert known_answers == unknown_answers, "byte-for-byte the same answers"
    assert b"ak-stage-email" in known_answers[1][1] and b"response_errors\": {}" in known_answers[1][1]
    assert known_queries == unknown_queries, "the same queries, in the same order"
    assert {k: after_known[k] - before[k] for k in before} == {k: after_unknown[k] - after_known[k] for k in before}
    assert after_unknown["mail"] - before["mail"] == 2 and after_unknown["tokens"] == before["tokens"]


def test_smtp_down_same_answer_then_the_sender_retries(recovery, alice, closed_port_smtp):
    known, _ = ask("alice")
    unknown, _ = ask("nobody")
    assert known == unknown and [status for status, _ in known] == [302, 200]
    counts = drain_once()
    assert counts == {"sent": 0, "dropped": 1, "retry": 1, "failed": 0} or \
        counts == {"sent": 0, "dropped": 0, "retry": 1, "failed": 0}  # the pass stops at the unreachable server
    pending = FlowLinkMail.objects.get(user=alice)
    assert pending.state == MailState.PENDING and pending.attempts == 1 and "Connection" in pending.last_error
    assert not FlowToken.objects.exists(), "a link that was not delivered is not left usable"
    assert drain_once()["retry"] == 0, "not retried before its backoff"
    with SmtpSink() as sink:
        closed_port_smtp.EMAIL_PORT = sink.port
        counts = drain_once(now=timezone.now() + BACKOFF_FIRST)
        assert counts["sent"] == 1
        (message,) = sink.wait_for(1)
    assert message["To"] == "alice@example.com" and message["Subject"] == "Reset your password"
    link = re.search(r"https://\S+", body_text(message)).group(0)
    assert link.startswith(f"{BASE}/if/flow/{SLUG}/?flow_token=")
    assert FlowLinkMail.objects.get(user=alice).state == MailState.SENT
    assert FlowLinkMail.objects.get(user=None).state == MailState.DROPPED
    # the link resumes the flow once, in another browser
    restored = Client().get(f"/api/v3/flows/executor/{SLUG}/?query=" + link.split("?", 1)[1].replace("=", "%3D"))
    assert restored.json()["component"] == "ak-stage-prompt"


def send_again(client: Client) -> dict:
    return client.post(URL, data={"component": "ak-stage-email"}, content_type="application/json").json()


def test_resend_limit_per_name_is_the_same_for_unknown_names(recovery, alice):
    answers = {}
    for name in ("alice", "nobody"):
        client = Client(REMOTE_ADDR=f"192.0.2.{len(answers) + 1}")
        first, _ = ask(name, client)
        shown = [send_again(client) for _ in range(outbox.PER_NAME)]
        answers[name] = [first[1][1], *(str(s) for s in shown)]
        assert [bool(s["response_errors"]) for s in shown] == [False] * (outbox.PER_NAME - 1) + [True]
        assert shown[-1]["response_errors"]["non_field_errors"][0]["code"] == "throttled"
        assert "Too many emails" in shown[-1]["response_errors"]["non_field_errors"][0]["string"]
        assert FlowLinkMail.objects.filter(name_key=name).count() == outbox.PER_NAME
    assert answers["alice"] == answers["nobody"]


def test_resend_limit_per_address(recovery):
    ip = "203.0.113.9"
    for i in range(outbox.PER_ADDRESS):
        answers, _ = ask(f"someone{i}", ip=ip)
        assert b"throttled" not in answers[1][1]
    answers, _ = ask("one-more", ip=ip)
    assert b"throttled" in answers[1][1]
    assert FlowLinkMail.objects.filter(client_ip=ip).count() == outbox.PER_ADDRESS
    other, _ = ask("one-more", ip="203.0.113.10")  # another address is not limited by this one
    assert b"throttled" not in other[1][1]


def test_per_user_limit_over_every_name_that_finds_the_user(recovery, alice, mailoutbox):
    for name in ("alice", "ALICE@example.com"):  # two names, one person: 3 + 3 asked
        client = Client(REMOTE_ADDR="192.0.2.50")
        ask(name, client)
        for _ in range(outbox.PER_NAME - 1):
            send_again(client)
    assert FlowLinkMail.objects.filter(user=alice).count() == 2 * outbox.PER_NAME
    counts = drain_once()
    assert counts["sent"] == outbox.PER_USER and counts["dropped"] == 2 * outbox.PER_NAME - outbox.PER_USER
    assert len(mailoutbox) == outbox.PER_USER


def test_window_passes(recovery):
    client = Client(REMOTE_ADDR="192.0.2.60")
    ask("carol", client)
    for _ in range(outbox.PER_NAME):
        send_again(client)
    assert outbox.limited("carol", "192.0.2.60") is not None
    later = timezone.now() + outbox.WINDOW + timedelta(seconds=1)
    assert outbox.limited("carol", "192.0.2.60", now=later) is None


def test_no_base_url_nothing_is_queued_and_everyone_is_told(recovery, alice, settings):
    SystemSettings(base_url="").save()
    settings.CONFIG = type(settings.CONFIG)(**{**settings.CONFIG.__dict__, "base_url": ""})
    known, known_queries = ask("alice")
    unknown, unknown_queries = ask("nobody")
    assert known == unknown and known_queries == unknown_queries
    assert b"cannot send email links" in known[1][1]
    assert not FlowLinkMail.objects.exists()


def test_the_worker_sends_queued_mail(recovery, alice, mailoutbox):
    from core.worker import run

    ask("alice")
    run(interval=60, once=True)
    assert len(mailoutbox) == 1 and BASE in mailoutbox[0].body
