"""Token scopes. Tokens issued before scopes existed get every scope except
`golden:read_sensitive` (listed here as it stood, so a later change of the defaults does not
change what this migration grants): they keep working for every endpoint; dates of birth,
tax IDs and a person's e-mail and phone are left out of what they read until an operator
issues a token with that scope (`create_integration CODE --scopes default,golden:read_sensitive`)."""

from django.db import migrations, models

import api.scopes

EXISTING_TOKENS_SCOPES = [
    "xref:read",
    "golden:read",
    "sources:write",
    "events:read",
    "match:probe",
    "webhooks:manage",
]


def grant_existing_tokens(apps, schema_editor):
    IntegrationToken = apps.get_model("api", "IntegrationToken")
    IntegrationToken.objects.update(scopes=EXISTING_TOKENS_SCOPES)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_idempotency_claimed_before_running"),
    ]

    operations = [
        migrations.AddField(
            model_name="integrationtoken",
            name="scopes",
            field=models.JSONField(
                default=api.scopes.default_scopes,
                help_text="What the token may do: see api.scopes.SCOPES.",
            ),
        ),
        migrations.RunPython(grant_existing_tokens, migrations.RunPython.noop),
    ]
