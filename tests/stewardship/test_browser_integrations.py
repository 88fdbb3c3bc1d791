"""The Integrations page in a real headless Chromium: a steward sees each source system's day
and replays its rejections; an auditor sees the same page without a button."""

import time

import pytest
from django.utils import timezone

from api.models import IntegrationToken
from mdm.models import IngestRejection, RejectionStatus
from mdm.services.ingest import get_source_system, ingest_records
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
    assert "13 / 1" in crm.locator(".ks-volumes").inner_text()
    assert crm.locator("svg.ks-chart rect").count() >= 2  # received and rejected bars
    assert crm.locator(".ks-mapping").inner_text() == "—"
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
    assert "12" in auditor.locator("#system-crm").inner_text()
    assert auditor.locator("[name=action]").count() == 0
