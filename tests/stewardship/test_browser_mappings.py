"""A steward tries a source mapping on sample payloads in a real headless Chromium: the
preview shows each payload as sent and the canonical record after, and the unmappable
sample as a rejection with its path and reason; then the mapping is saved as a version."""

from __future__ import annotations

import json

import pytest

from mdm.models import SourceMapping
from tests.stewardship.test_browser import browser, log_in  # noqa: F401 - the shared fixture

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = """fields:
  source_key: Id
  name: Name
  kind:
    path: RecordType.Name
    map: {Business Account: organization, Person Account: person}
  country:
    path: BillingAddress.countryCode
    map: {UK: GB}
  email: Contacts.records[0].Email
"""
SAMPLES = [
    {"Id": "001A", "Name": "Acme Ltd", "RecordType": {"Name": "Business Account"},
     "BillingAddress": {"countryCode": "UK"},
     "Contacts": {"records": [{"Email": "Hi@Acme.co.uk"}]}},
    {"Id": "001B", "Name": "Globex", "RecordType": {"Name": "Business Account"},
     "BillingAddress": "10 Main St"},
]  # fmt: skip


def test_steward_previews_a_mapping_before_and_after_with_a_rejection_then_saves_it(
    browser,  # noqa: F811 - the fixture imported above
    live_server,
    steward_account,
):
    page = log_in(browser, live_server, "alice")
    page.goto(f"{live_server.url}/steward/mappings/crm/customer/")
    page.fill("#spec", SPEC)
    page.fill("#samples", "\n".join(json.dumps(s) for s in SAMPLES))

    page.click("button[value=preview_mapping]")
    page.wait_for_selector("#mapping-preview .preview-row")

    preview = page.locator("#mapping-preview")
    assert "2 samples: 1 rejected." in preview.inner_text()
    mapped = page.locator(".preview-row.mapped")
    assert mapped.count() == 1
    assert '"countryCode": "UK"' in mapped.locator("pre").inner_text()  # before
    after = mapped.locator("table.after").inner_text()
    assert "GB" in after
    assert "organization" in after
    assert "hi@acme.co.uk" in after  # the e-mail once normalized
    rejected = page.locator(".preview-row.rejected .rejection").inner_text()
    assert "unmappable" in rejected
    assert "country from BillingAddress.countryCode" in rejected
    assert "expected an object at BillingAddress, got a str" in rejected
    assert not SourceMapping.objects.exists()

    page.fill("#reason", "Salesforce account export")
    page.click("button[value=save_mapping]")
    page.wait_for_selector(".messagelist")

    assert "Mapping v1 saved" in page.locator(".messagelist").inner_text()
    assert SourceMapping.objects.get().note == "Salesforce account export"
