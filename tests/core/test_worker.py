from datetime import timedelta

import pytest
from django.utils import timezone

from core.accounts.models import AuthenticatedSession, Token, TokenIntents, User
from core.worker import expire_once

pytestmark = pytest.mark.django_db


def test_expiry_pass_deletes_only_expired():
    user = User.objects.create_user("w")
    past, future = timezone.now() - timedelta(minutes=1), timezone.now() + timedelta(hours=1)
    AuthenticatedSession.objects.create(session_key="old", user=user, expires=past)
    AuthenticatedSession.objects.create(session_key="new", user=user, expires=future)
    for ident, exp in (("t-old", past), ("t-new", future)):
        t = Token(identifier=ident, intent=TokenIntents.INTENT_API, user=user, expires=exp)
        t.set_key()
        t.save()
    counts = expire_once()
    assert counts["sessions"] == 1 and counts["tokens"] == 1
    assert list(AuthenticatedSession.objects.values_list("session_key", flat=True)) == ["new"]
    assert list(Token.objects.values_list("identifier", flat=True)) == ["t-new"]
