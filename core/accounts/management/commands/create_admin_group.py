from django.core.management.base import BaseCommand, CommandError

from core.accounts.models import Group, User

ADMIN_GROUP = "authentik Admins"


class Command(BaseCommand):
    help = (f'Put an existing user into the superuser group "{ADMIN_GROUP}" (created if missing). It resets no '
            "password: for a lost one, `ak create_recovery_key 1 <username>` prints a one-time login link.")

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", default="", help="an existing user, e.g. akadmin")

    def handle(self, username: str, **options):
        if not username:
            raise CommandError(f"which user? `ak create_admin_group <username>` puts an existing user into "
                               f"{ADMIN_GROUP!r} (superuser); it resets no password: for a lost password, "
                               "`ak create_recovery_key 1 <username>` prints a one-time login link")
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}; create it first (initial setup, API or admin)")
        group, _ = Group.objects.get_or_create(name=ADMIN_GROUP, defaults={"is_superuser": True})
        if not group.is_superuser:
            group.is_superuser = True
            group.save()
        user.groups.add(group)
        self.stdout.write(f"{username} is now a member of {ADMIN_GROUP!r} (superuser)")
