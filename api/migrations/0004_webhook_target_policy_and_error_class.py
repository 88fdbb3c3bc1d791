import api.outbound
from django.db import migrations, models


def forget_response_bodies(apps, schema_editor):
    """Deliveries kept up to 2,000 characters of a receiver's answer: keep only its class."""
    delivery = apps.get_model("api", "WebhookDelivery")
    failed = delivery.objects.exclude(last_error="")
    failed.filter(response_code__isnull=False).update(last_error="http_status")
    failed.filter(response_code__isnull=True).update(last_error="connect_failed")


class Migration(migrations.Migration):

    dependencies = [
        ('api', '0003_integration_token_scopes'),
    ]

    operations = [
        migrations.RunPython(forget_response_bodies, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='webhookdelivery',
            name='last_error',
            field=models.CharField(blank=True, help_text="What went wrong, as a class (timeout, connect_failed, http_status, …); a receiver's response body is never stored.", max_length=40),
        ),
        migrations.AlterField(
            model_name='webhooksubscription',
            name='url',
            field=models.URLField(max_length=500, validators=[api.outbound.validate_webhook_url]),
        ),
    ]
