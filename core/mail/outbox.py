"""Asking for a mail (the email stage): the re-send limits and the one row written per request.

The stage's work is the same whether or not the name exists: one count query and one insert, and the
same answer (issue 8 item 10: existing names answered in 172-191 ms against 15-20 ms when the mail went
out inline, and one flow re-sent 21 mails to its victim). Whether there is anyone to mail is decided
later by the sender, which nobody waits for.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from core.mail.models import FlowLinkMail

# Re-send limits over WINDOW (the default link lifetime). A person who lost a mail may ask twice more; a
# victim's inbox and the SMTP relay cannot be flooded by someone who knows the name.
WINDOW = timedelta(minutes=30)
PER_NAME = 3  # requests per name typed (case-folded), known or not: the same answer for both
PER_ADDRESS = 10  # requests per client address: higher, several people can share one (NAT)
PER_USER = 3  # mails actually sent to one user over every name that finds them; the sender enforces it
LIMITED = ("Too many emails were asked for in the last {minutes} minutes. Please wait before asking again, "
           "and look in your spam folder for the ones already sent.")


def name_key(typed: str | None, user_pk) -> str:
    """The name as typed, compared the way the identification stage matches it (case-insensitively); a
    flow without a typed name (the email stage after another stage set the user) counts per user."""
    name = unicodedata.normalize("NFKC", (typed or "").strip()).casefold()
    return name[:255] if name else f"#user:{user_pk}"


def limited(key: str, client_ip: str, now=None) -> str | None:
    """The message to show when ``key`` or ``client_ip`` asked for too many mails in WINDOW, else None."""
    since = (now or timezone.now()) - WINDOW
    counts = FlowLinkMail.objects.filter(created__gte=since).filter(Q(name_key=key) | Q(client_ip=client_ip)) \
        .aggregate(by_name=Count("pk", filter=Q(name_key=key)), by_address=Count("pk", filter=Q(client_ip=client_ip)))
    if counts["by_name"] >= PER_NAME or counts["by_address"] >= PER_ADDRESS:
        return LIMITED.format(minutes=int(WINDOW.total_seconds() // 60))
    return None


def request_mail(*, flow, stage, plan: dict, user_pk, typed: str | None, client_ip: str) -> str | None:
    """Queue a flow-link mail (or not, when limited: then the message to show). ``user_pk`` may be None."""
    key = name_key(typed, user_pk)
    message = limited(key, client_ip)
    if message is None:
        FlowLinkMail.objects.create(flow=flow, stage=stage, plan=plan, user_id=user_pk, name_key=key,
                                    client_ip=client_ip)
    return message
