"""The Integrations page in a real headless Chromium: a steward sees each source system's day
and replays its rejections; an auditor sees the same page without a button."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import DeliveryStatus, IntegrationToken, WebhookDelivery, WebhookSubscription
from api.webhooks import create_subscription
from mdm.models import IngestRejection, OutboxEvent, RejectionStatus
from mdm.selectors import source_activity
from mdm.services.ingest import get_source_system, ingest_records
from mdm.services.ingest_volumes import record_volume
from tests.stewardship.test_browser import (  # noqa: F401 - shared fixtures
    assert_screenshots_written,
    browser,
    log_in,
    screenshots,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def day_of_ingest():
    """Three systems with some records each (volumes are counted as chunks commit), a
    rejection at crm, and a token crm used."""
    for system, count in (("crm", 12), ("erp", 5), ("billing", 3)):
        rows = [{"source_key": f"{system}-{n}", "name": f"Company {n}"} for n in range(count)]
        if system == "crm":
            rows.append({"name": "no source key"})
        ingest_records(
            entity_type="customer",
            system_code=system,
            rows=list(enumerate(rows, start=1)),
            actor="test",
            create_system=True,
        )
    token, _ = IntegrationToken.issue(get_source_system("crm"))
    IntegrationToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    now = timezone.now()
    for back in range(1, 24):  # the rest of the day, as earlier loads left it
        for system, base in (("crm", 40), ("erp", 15), ("billing", 6)):
            rejected = 2 if system == "crm" and back % 7 == 0 else 0
            record_volume(
                system=get_source_system(system),
                entity_type="customer",
                counts={"loaded": base + (back * 7) % 13, "rejected": rejected},
                at=now - timedelta(hours=back),
            )
    subscription = create_subscription(
        url="http://127.0.0.1:9/hook",
        owner=get_source_system("crm"),
        name="crm-events",
        from_event=1,
    )
    first = OutboxEvent.objects.order_by("id").first()
    WebhookDelivery.objects.create(
        subscription=subscription, event=first, status=DeliveryStatus.DEAD, attempts=8
    )
    WebhookSubscription.objects.filter(pk=subscription.pk).update(last_event_id=first.pk)


def test_steward_sees_integrations_and_replays_rejections(
    browser,  # noqa: F811
    live_server,
    steward_account,
    auditor_account,
    day_of_ingest,
    screenshots,  # noqa: F811
):
    started = time.time()
    page = log_in(browser, live_server, "alice")

    page.goto(f"{live_server.url}/steward/integrations/")
    crm = page.locator("#system-crm")
    day = next(a for a in source_activity(now=timezone.now()) if a.system.code == "crm")
    volumes = f"{day.received_total} / {day.rejected_total}"
    assert crm.locator(".ks-volumes").inner_text() == volumes
    assert crm.locator("svg.ks-chart rect").count() == 24 + 4  # every hour; 4 with rejections
    assert crm.locator(".ks-mapping").inner_text() == "—"
    assert "1 dead" in crm.inner_text()
    assert page.locator("button[value=replay_dead_letters]").count() == 1
    page.screenshot(path=str(screenshots / "integrations.png"), full_page=True)
    IngestRejection.objects.filter(status=RejectionStatus.OPEN).update(
        payload={"source_key": "crm-fixed", "name": "Fixed Company"}
    )
    crm.locator("button[value=replay_rejections]").click()
    page.wait_for_load_state()

    assert "1 rejected record(s) loaded" in page.locator("ul.messagelist").inner_text()
    assert IngestRejection.objects.get().status == RejectionStatus.REPLAYED
    assert_screenshots_written(screenshots, ["integrations.png"], started)

    auditor = log_in(browser, live_server, "audrey")
    auditor.goto(f"{live_server.url}/steward/integrations/")
    assert auditor.locator("#system-crm .ks-volumes").inner_text() == (
        f"{day.received_total + 1} / {day.rejected_total}"  # the replayed record came in
    )
    assert auditor.locator("[name=action]").count() == 0
