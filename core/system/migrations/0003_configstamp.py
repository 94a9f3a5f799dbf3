import secrets

from django.db import migrations, models


def first_stamp(apps, schema_editor):
    apps.get_model("authentik_admin", "ConfigStamp").objects.using(schema_editor.connection.alias).create(
        id=1, stamp=secrets.token_hex(16))


class Migration(migrations.Migration):

    dependencies = [
        ('authentik_admin', '0002_names_as_authentik'),
    ]

    operations = [
        migrations.CreateModel(
            name='ConfigStamp',
            fields=[
                ('id', models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ('stamp', models.CharField(max_length=32)),
            ],
            options={'verbose_name': 'Configuration stamp'},
        ),
        migrations.RunPython(first_stamp, migrations.RunPython.noop),
    ]
