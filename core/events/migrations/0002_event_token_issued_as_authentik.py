"""Events of OIDC token issuance as authentik records them (its generated API clients know no ``token_issued``
action and refuse a list holding one): a machine's token (client_credentials, password) is a ``login`` by
token; a code or refresh exchange continues the authorization, so its row becomes ``authorize_application``
with ``token_exchange`` in its context. Rows are rewritten, never dropped."""

from django.db import migrations, models


def rewrite(apps, schema_editor):
    Event = apps.get_model("authentik_events", "Event")
    for event in Event.objects.filter(action="token_issued").iterator():
        context = dict(event.context or {})
        if context.get("grant_type") in ("client_credentials", "password"):
            event.action, context["method"] = "login", "token"
        else:
            event.action, context["token_exchange"] = "authorize_application", True
        event.context = context
        event.save(update_fields=["action", "context"])


class Migration(migrations.Migration):

    dependencies = [
        ('authentik_events', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='event',
            name='action',
            field=models.TextField(choices=[('login', 'Login'), ('login_failed', 'Login Failed'), ('logout', 'Logout'), ('user_write', 'User Write'), ('suspicious_request', 'Suspicious Request'), ('password_set', 'Password Set'), ('secret_view', 'Secret View'), ('secret_rotate', 'Secret Rotate'), ('authorize_application', 'Authorize Application'), ('flow_execution', 'Flow Execution'), ('policy_execution', 'Policy Execution'), ('policy_exception', 'Policy Exception'), ('configuration_error', 'Configuration Error'), ('model_created', 'Model Created'), ('model_updated', 'Model Updated'), ('model_deleted', 'Model Deleted'), ('email_sent', 'Email Sent'), ('system_exception', 'System Exception'), ('custom_', 'Custom')]),
        ),
        migrations.RunPython(rewrite, migrations.RunPython.noop),
    ]
