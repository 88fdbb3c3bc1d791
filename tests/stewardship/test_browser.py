"""Steward and auditor workflows in a real headless Chromium (Playwright) against a live
server. The steward test takes the screenshots the README shows: into a temporary directory,
or into docs/screenshots/ when asked (`make screenshots`, i.e. `pytest --screenshots DIR`).

Without Chromium these tests skip, saying why; in CI (`CI=true`) they fail instead, so the only
end-to-end UI tests never go missing unnoticed."""

import os
import time
from pathlib import Path

import pytest
from django.db import connections

from matching.models import CandidateStatus, MatchCandidate, MatchDecision
from mdm.models import GoldenRecord, LinkMethod, SourceRecord, StewardOverride
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge
from tests.stewardship.conftest import PASSWORD, ingest, make_candidate

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.django_db(transaction=True)


def require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    reason = f"browser tests need Debian's chromium at {CHROMIUM}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the end-to-end UI tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def screenshots(request, tmp_path) -> Path:
    """Where the screenshots go: `--screenshots DIR` (make screenshots), else a temporary
    directory — a test run never rewrites tracked files."""
    chosen = request.config.getoption("screenshots")
    directory = Path(chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def assert_screenshots_written(directory: Path, names: list[str], since: float) -> None:
    for name in names:
        path = directory / name
        assert path.is_file(), f"{name} was not written"
        assert path.stat().st_mtime >= since, f"{name} is older than this test"
        assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{name} is not a PNG"
        assert path.stat().st_size > 10_000, f"{name} is too small to show a page"


@pytest.fixture
def browser(monkeypatch):
    require_chromium()
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # Live-server threads and the test's greenlet context each open their own connection;
    # close them after every request / at the end so the test database can be dropped.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
        connections.close_all()


@pytest.fixture
def review_data():
    """A queue worth looking at: a few customer pairs, and contracts on one of them."""
    acme = make_candidate(
        {
            "source_key": "CRM-1001",
            "name": "Acme Corporation",
            "email": "info@acme.com",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
            "phone": "+49 30 1234567",
        },
        {
            "source_key": "ERP-7731",
            "name": "ACME Corp.",
            "email": "info@acme.com",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
            "phone": "+49 30 1234567",
        },
        probability=0.58,
    )
    globex = make_candidate(
        {
            "source_key": "CRM-1002",
            "name": "Globex Ltd",
            "email": "hello@globex.io",
            "city": "Paris",
            "country": "FR",
        },
        {
            "source_key": "ERP-7732",
            "name": "Globex Holdings",
            "email": "ir@globex-holdings.com",
            "city": "Lyon",
            "country": "FR",
        },
        probability=0.54,
    )
    make_candidate(
        {
            "source_key": "CRM-1003",
            "name": "Initech",
            "email": "contact@initech.com",
            "city": "Austin",
            "country": "US",
        },
        {
            "source_key": "ERP-7733",
            "name": "Initech LLC",
            "email": "contact@initech.com",
            "city": "Austin",
            "country": "US",
        },
        probability=0.91,
    )
    make_candidate(
        {"source_key": "CRM-1004", "name": "Umbrella plc", "city": "London", "country": "GB"},
        {"source_key": "ERP-7734", "name": "Umbrella Pharma", "city": "Cambridge", "country": "GB"},
        probability=0.72,
    )
    billing = ingest(
        "billing",
        source_key="INV-20417",
        name="Acme Corporation GmbH",
        email="billing@acme.com",
        city="Berlin",
        address_line1="Invalidenstrasse 1",
        country="DE",
    )
    merge(
        survivor=acme.left.golden,
        loser=billing.golden,
        actor="match",
        reason="auto-link",
        method=LinkMethod.AUTO,
        probability=0.97,
    )
    ingest_records(
        entity_type="contract",
        system_code=acme.left.source_system.code,
        rows=[
            (
                n,
                {
                    "source_key": f"acme-c{n}",
                    "contract_number": f"AC-{n:04d}",
                    "status": "active",
                    "customer_key": acme.left.source_key,
                    "total_value": str(12000 * n),
                    "currency": "EUR",
                },
            )
            for n in range(1, 4)
        ],
        actor="test",
    )
    return {"acme": acme, "globex": globex}


def log_in(browser, live_server, username):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/steward/queue/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/steward/queue/")
    return page


def test_steward_merges_rejects_splits_and_pins(
    browser, live_server, steward_account, review_data, screenshots
):
    acme, globex = review_data["acme"], review_data["globex"]
    started = time.time() - 1  # file times have a coarser clock on some filesystems
    page = log_in(browser, live_server, "alice")

    # the queue: unsure pairs first, the one with contracts at stake on top
    rows = page.locator("#queue-table tbody tr")
    assert rows.count() == 4
    assert "Acme Corporation" in rows.first.inner_text()
    assert "Initech" in rows.last.inner_text()
    page.screenshot(path=str(screenshots / "queue.png"), full_page=True)

    # open the Acme pair and merge it
    page.goto(f"{live_server.url}/steward/candidates/{acme.pk}/")
    assert (
        page.locator('#comparison tr[data-attribute="email"]').get_attribute("data-agreement")
        == "same"
    )
    page.screenshot(path=str(screenshots / "candidate.png"), full_page=True)
    page.fill("input[name=reason]", "same company, same VAT address")
    page.click("button[value=merge]")

    # the next candidate opens: the Globex pair — mark it not a match with the keyboard
    page.wait_for_url(f"**/steward/candidates/{globex.pk}/")
    assert "merged" in page.locator(".messagelist").inner_text()
    with page.expect_navigation():
        page.keyboard.press("n")
    assert (
        f"Candidate #{globex.pk}: marked not a match" in page.locator(".messagelist").inner_text()
    )

    acme.refresh_from_db()
    globex.refresh_from_db()
    assert acme.status == CandidateStatus.LINKED
    assert globex.status == CandidateStatus.NOT_A_MATCH
    merged_golden = SourceRecord.objects.get(pk=acme.left_id).golden_id
    assert SourceRecord.objects.get(pk=acme.right_id).golden_id == merged_golden
    assert MatchDecision.objects.get(candidate=acme).decided_by == steward_account

    # the merged golden record: split the erp member out again
    page.goto(f"{live_server.url}/steward/golden/{merged_golden}/")
    assert page.locator("#members tbody tr").count() == 3
    page.check(f'#members input[value="{acme.right_id}"]')
    page.fill("#split-form input[name=reason]", "ERP record is the subsidiary")
    with page.expect_navigation():
        page.click("#split-form button[value=split]")
    assert "Split 1 source record(s) out" in page.locator(".messagelist").inner_text()
    assert page.locator("#members tbody tr").count() == 2
    split_off = SourceRecord.objects.get(pk=acme.right_id).golden_id
    assert split_off != merged_golden

    # pin a value
    page.select_option("#pin-attribute", "phone")
    page.fill("#pin-value", "+49 30 7654321")
    page.fill("#pin-reason", "verified by phone with the customer")
    with page.expect_navigation():
        page.click("#pin-form button[value=pin]")
    phone_row = page.locator('#lineage tr[data-field="phone"]')
    assert "pinned by alice" in phone_row.inner_text()
    pin = StewardOverride.objects.get(golden_id=merged_golden)
    assert (pin.attribute, pin.reason) == ("phone", "verified by phone with the customer")
    assert GoldenRecord.objects.get(pk=merged_golden).values["phone"] == pin.value
    page.screenshot(path=str(screenshots / "golden.png"), full_page=True)

    assert_screenshots_written(screenshots, ["queue.png", "candidate.png", "golden.png"], started)


def test_auditor_sees_history_and_cannot_change_anything(
    browser, live_server, auditor_account, steward_account, review_data
):
    from matching.decisions import decide

    acme = review_data["acme"]
    decide(candidate=acme, verdict="match", actor=steward_account, reason="same company")
    golden_id = SourceRecord.objects.get(pk=acme.left_id).golden_id
    page = log_in(browser, live_server, "audrey")

    page.goto(f"{live_server.url}/steward/golden/{golden_id}/history/")
    history = page.locator("#history").inner_text()
    assert "user:alice" in history and "same company" in history

    page.goto(f"{live_server.url}/steward/golden/{golden_id}/")
    assert page.locator("button").count() == 0 or not page.locator("[name=action]").count()
    assert page.locator("#split-form input[type=checkbox]").count() == 0
    page.goto(f"{live_server.url}/steward/candidates/{review_data['globex'].pk}/")
    assert page.locator("[name=action]").count() == 0

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{live_server.url}/steward/candidates/{review_data['globex'].pk}/",
        form={"action": "not_a_match", "csrfmiddlewaretoken": token, "reason": "x"},
        headers={"Referer": page.url},
    )
    assert response.status == 403
    assert "CSRF" not in response.text()
    assert MatchCandidate.objects.get(pk=review_data["globex"].pk).status == "open"
