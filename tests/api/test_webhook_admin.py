"""The admin never shows a webhook subscription's signing secret on its pages: only once, when
the subscription is added or its secret rotated, on a page marked no-store."""

import pytest
from django.urls import reverse

from api.models import WebhookSubscription
from api.webhooks import create_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model, settings):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    user = django_user_model.objects.create_superuser("root", password="pw-root-1234")
    client.force_login(user)
    return client


def test_the_change_page_hides_the_secret(admin_client):
    subscription = create_subscription(url="http://127.0.0.1:9/hook", owner=None, name="erp")

    page = admin_client.get(
        reverse("admin:api_webhooksubscription_change", args=[subscription.pk])
    ).content.decode()

    assert subscription.secret not in page
    assert f"…{subscription.secret[-4:]}" in page


def test_adding_shows_the_secret_once(admin_client):
    form = admin_client.get(reverse("admin:api_webhooksubscription_add")).content.decode()
    assert "generated when saved" in form  # no hint of a secret that is not saved yet

    response = admin_client.post(
        reverse("admin:api_webhooksubscription_add"),
        {"name": "crm", "url": "http://127.0.0.1:9/hook", "event_types": "[]", "active": "on"},
    )

    subscription = WebhookSubscription.objects.get(name="crm")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert subscription.secret in response.content.decode()
    listing = admin_client.get(reverse("admin:api_webhooksubscription_changelist"))
    assert subscription.secret not in listing.content.decode()


def test_rotating_gives_a_new_secret_shown_once(admin_client):
    subscription = create_subscription(url="http://127.0.0.1:9/hook", owner=None, name="erp")
    old = subscription.secret

    response = admin_client.post(
        reverse("admin:api_webhooksubscription_changelist"),
        {"action": "rotate_secret", "_selected_action": [subscription.pk]},
    )

    subscription.refresh_from_db()
    assert subscription.secret != old
    assert "no-store" in response["Cache-Control"]
    assert subscription.secret in response.content.decode()


def test_an_auditor_cannot_rotate(client, django_user_model, settings):
    from django.contrib.auth.models import Permission

    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    subscription = create_subscription(url="http://127.0.0.1:9/hook", owner=None, name="erp")
    old = subscription.secret
    auditor = django_user_model.objects.create_user("audit", password="pw-audit-1234")
    auditor.is_staff = True
    auditor.save()
    auditor.user_permissions.add(Permission.objects.get(codename="view_webhooksubscription"))
    client.force_login(auditor)

    client.post(
        reverse("admin:api_webhooksubscription_changelist"),
        {"action": "rotate_secret", "_selected_action": [subscription.pk]},
    )

    subscription.refresh_from_db()
    assert subscription.secret == old
