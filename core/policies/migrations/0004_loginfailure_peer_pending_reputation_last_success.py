from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("authentik_policies", "0003_loginfailure"),
    ]

    operations = [
        migrations.AddField(
            model_name="loginfailure",
            name="peer",
            field=models.GenericIPAddressField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name="loginfailure",
            name="pending",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="reputation",
            name="last_success",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
