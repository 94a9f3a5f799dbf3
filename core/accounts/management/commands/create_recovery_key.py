from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from core.accounts.models import User
from core.accounts.recovery_links import RECOVERY_PATH, recovery_key
from core.events.record import record


class Command(BaseCommand):
    help = ("Create a one-time recovery link into the recovery flow: the user's second factor (when they have "
            "one), a new password, then the login.")

    def add_arguments(self, parser):
        parser.add_argument("years", type=int, help="how many years the link stays valid (until used)")
        parser.add_argument("username", help="the user the link recovers")

    def handle(self, years: int, username: str, **options):
        if years < 1 or years > 100:
            raise CommandError(f"years={years}: expected a whole number from 1 to 100")
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}; list users with the admin or GET /api/v3/core/users/")
        key = recovery_key(user, timedelta(days=365 * years),
                           f"Recovery link created by ak create_recovery_key for {username}")
        record("secret_rotate", user=user, message="recovery key created from the command line")
        self.stdout.write(f"Store this link safely, as it will allow anyone to access Gatehouse as {username}.")
        self.stdout.write(f"{RECOVERY_PATH}{key}")
