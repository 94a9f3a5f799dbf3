"""``ak rotate_secret_key``: make this database work with the configured secret key when the original is lost
(or leaked).

What depends on the secret key in the database, and what this command does about each:
- outpost tokens (managed, derived from the key: ``Token.derive_key``): new salt, new key, same identifier.
  The embedded outpost derives its token again by itself; a standalone outpost needs its new token
  (``view_key`` or the admin's outpost page) in AUTHENTIK_TOKEN. Their old keys stop working;
- the copies of other tokens' keys kept for ``view_key``, where the core keeps them sealed with the key: they
  cannot be opened without the old key, so they are dropped; those API tokens and app passwords keep working
  (only their hash is checked), but their keys cannot be shown again;
- login sessions (Django ties them to the key): all of them end, and the outposts are told (SESSION_END);
- the check value (core/crypto/key_check.py): written for the new key.
Nothing else in the database is derived from the key (recovery links, TOTP secrets, certificates and OIDC
keys are stored as they are or hashed without it).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = ("Only when the original secret key is lost (or leaked): re-key the outpost tokens for the configured "
            "AUTHENTIK_SECRET_KEY and end every login session, so the database works with the new key. "
            "Standalone outposts then need their new token; other tokens keep working but their keys cannot be "
            "shown again. Without --yes it only says what it would do.")
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="do it (without: only list what would change)")

    def handle(self, yes: bool, **options):
        from django.contrib.sessions.models import Session

        from core.accounts.models import AuthenticatedSession, Token
        from core.crypto import key_check
        from core.outposts.models import EMBEDDED_OUTPOST_MANAGED, Outpost

        same = key_check.matches(settings.SECRET_KEY)
        if same is True:
            self.stdout.write("the configured secret key is the one this database was made with: nothing to rotate")
            return
        self.stdout.write("the configured secret key " + ("differs from the one this database was made with"
                                                          if same is False else "has no check value in this database"))
        derived = list(Token.objects.exclude(key_salt="").order_by("identifier"))
        # Kept copies of other keys, sealed with the old secret key (where this core keeps them): lost with it.
        keeps_keys = any(f.name == "key_sealed" for f in Token._meta.get_fields())
        sealed = Token.objects.filter(key_salt="").exclude(key_sealed="") if keeps_keys else Token.objects.none()
        outposts = {o.token_identifier: o for o in Outpost.objects.all()}
        sessions = Session.objects.count()
        for token in derived:
            outpost = outposts.get(token.identifier)
            if outpost is None:
                self.stdout.write(f"  token {token.identifier}: new key (whoever uses it needs the new one)")
            elif outpost.managed == EMBEDDED_OUTPOST_MANAGED:
                self.stdout.write(f"  outpost {outpost.name!r}: new token (embedded: nothing to do)")
            else:
                self.stdout.write(f"  outpost {outpost.name!r}: new token: give the standalone outpost the new "
                                  f"AUTHENTIK_TOKEN (GET /api/v3/core/tokens/{token.identifier}/view_key/)")
        if sealed.exists():
            self.stdout.write(f"  {sealed.count()} other token(s) (API tokens, app passwords) keep working, but their "
                              "keys, kept sealed with the lost secret key, can no longer be shown (view_key)")
        self.stdout.write(f"  {sessions} login session(s) end; everyone logs in again")
        if not yes:
            raise CommandError("nothing changed: run `ak rotate_secret_key --yes` to do the above")
        with transaction.atomic():
            for token in derived:
                token.set_derived_key()
                token.save()
            if keeps_keys:
                sealed.update(key_sealed="")
            for session in AuthenticatedSession.objects.all().iterator():
                session.delete()  # one by one: the delete signal tells the outposts (SESSION_END)
            Session.objects.all().delete()
            key_check.record(settings.SECRET_KEY, replace=True)
        self.stdout.write(f"done: {len(derived)} token(s) re-keyed, {sessions} session(s) ended, the secret key's "
                          "check value written")
