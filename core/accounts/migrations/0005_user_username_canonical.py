"""User.username_canonical: NFKC + casefold of the username (core/accounts/usernames.py), filled for
existing users. The form is spelled out here so that this migration keeps meaning what it meant."""

import unicodedata

from django.db import migrations, models


def fill(apps, schema_editor):
    User = apps.get_model("authentik_core", "User")
    for user in User.objects.only("pk", "username").iterator():
        value = unicodedata.normalize("NFKC", (user.username or "").strip()).casefold()
        User.objects.filter(pk=user.pk).update(username_canonical=value)


class Migration(migrations.Migration):

    dependencies = [
        ("authentik_core", "0004_token_key_sealed"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="username_canonical",
            field=models.TextField(db_index=True, default="", editable=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
