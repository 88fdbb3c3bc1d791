"""Steward workspace v2 in a real headless Chromium (Playwright) against a live server: each
deliverable checked on the page and in the database. Screenshots go to a temporary directory
(the `screenshots` fixture); docs/screenshots changes only through `make screenshots`.
Without Chromium these skip (fail under CI=true), as test_browser.py's do."""

import math

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from matching.models import CandidateStatus, MatchCandidate, MatchModel, MatchRun
from matching.review import ReviewPair, store_candidates
from matching.services import run_batch_matching
from mdm.models import GoldenRecord, GoldenStatus, LinkMethod, SourceRecord
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge
from stewardship.models import ApprovalRequest, AutoLinkSample, CandidateClaim
from stewardship.services import draw_accuracy_sample
from tests.stewardship.conftest import PASSWORD, explanation, ingest, make_candidate
from tests.stewardship.test_browser import browser, screenshots  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(browser, live_server, username, path="/steward/queue/"):  # noqa: F811
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    return page


def _golden(system: str, names: list[str], **extra) -> GoldenRecord:
    records = [ingest(system, name=name, **extra) for name in names]
    golden = records[0].golden
    for record in records[1:]:
        golden = merge(survivor=golden, loser=record.golden, actor="t", reason="t")
    return golden


def _golden_pair_candidate(left: GoldenRecord, right: GoldenRecord) -> MatchCandidate:
    pairs = []
    lefts, rights = list(left.members.order_by("pk")), list(right.members.order_by("pk"))
    for n, (a, b) in enumerate(zip(lefts, rights, strict=False)):
        first, second = sorted((a, b), key=lambda r: r.pk)
        pairs.append(
            ReviewPair(
                first.pk,
                second.pk,
                0.78 - n / 10,
                2.0 - n,
                explanation(first.attributes, second.attributes),
            )
        )
    store_candidates(entity_type="customer", pairs=pairs, rescored=set())
    return MatchCandidate.objects.get(
        status=CandidateStatus.OPEN,
        left_golden_id=min(left.pk, right.pk),
        right_golden_id=max(left.pk, right.pk),
    )


@pytest.fixture
def steward_bob(roles, django_user_model):
    user = django_user_model.objects.create_user("bob", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="steward"))
    return user


# ------------------------------------------------------------------ 15.1 candidate page


def test_candidate_page_shows_both_golden_records_and_merges_what_it_previewed(
    browser,  # noqa: F811
    live_server,
    steward_account,
    screenshots,  # noqa: F811
):
    left = _golden("crm", ["Acme Corporation", "ACME Corp"], city="Berlin", country="DE")
    right = _golden("erp", ["Acme Corp.", "Acme GmbH", "ACME"], city="Bonn", country="DE")
    candidate = _golden_pair_candidate(left, right)
    page = sign_in(browser, live_server, "alice", f"/steward/candidates/{candidate.pk}/")

    table = page.locator("#side-by-side")
    heads = table.locator("thead th").all_inner_texts()
    assert left.pk in " ".join(heads) and right.pk in " ".join(heads)
    assert (
        page.locator("#left-golden .ks-members tr").count()
        + page.locator("#right-golden .ks-members tr").count()
        == 5
    )
    for record_id in (candidate.left_id, candidate.right_id):
        assert "best pair" in page.locator(f'tr[data-record="{record_id}"]').inner_text()
    assert page.locator("#scored-pairs tbody tr").count() == 2
    city = page.locator('#side-by-side tr[data-field="city"]')
    assert "conflict" in city.locator("td.merged").inner_text()
    merged_name = page.locator('#side-by-side tr[data-field="name"] td.merged .ks-value')
    shown_name = merged_name.inner_text()
    page.screenshot(path=str(screenshots / "candidate-golden-pair.png"), full_page=True)

    with page.expect_navigation():
        page.keyboard.press("m")

    survivor = GoldenRecord.objects.get(pk=min((left, right), key=lambda g: g.created_at).pk)
    assert MatchCandidate.objects.get(pk=candidate.pk).status == CandidateStatus.LINKED
    assert survivor.members.count() == 5
    assert survivor.values["name"] == shown_name
    assert (screenshots / "candidate-golden-pair.png").stat().st_size > 10_000


def test_merge_with_and_split_show_their_previews_first(
    browser,  # noqa: F811
    live_server,
    steward_account,
):
    acme = _golden("crm", ["Acme Corporation", "Acme Corp"], city="Berlin")
    other = _golden("billing", ["Acme Corporation GmbH"], city="Hamburg")
    page = sign_in(browser, live_server, "alice", f"/steward/golden/{acme.pk}/")

    page.fill("#merge-search input[name=merge_q]", "gmbh")
    with page.expect_navigation():
        page.click("#merge-search button")
    with page.expect_navigation():
        page.click("#merge-results a")
    preview = page.locator("#merge-preview-table")
    assert "conflict" in preview.locator('tr[data-field="city"]').inner_text()
    assert GoldenRecord.objects.get(pk=other.pk).status == GoldenStatus.ACTIVE
    with page.expect_navigation():
        page.click("#merge-form button[value=merge_golden]")
    assert GoldenRecord.objects.get(pk=other.pk).merged_into_id == acme.pk

    billing = SourceRecord.objects.get(golden=acme, source_system__code="billing")
    page.check(f'#members input[value="{billing.pk}"]')
    with page.expect_navigation():
        page.click("#preview-split")
    assert page.locator("#split-staying tbody tr").count() > 0
    assert "Hamburg" in page.locator("#split-leaving").inner_text()
    assert SourceRecord.objects.get(pk=billing.pk).golden_id == acme.pk  # nothing split yet
    page.fill("#split-preview input[name=reason]", "the GmbH is a subsidiary")
    with page.expect_navigation():
        page.click("#confirm-split")
    assert SourceRecord.objects.get(pk=billing.pk).golden_id != acme.pk


# --------------------------------------------------------------------- 15.2 explanations


def test_the_chart_starts_at_the_prior_and_adds_up_in_plain_words(
    browser,  # noqa: F811
    live_server,
    steward_account,
    customer_model,
    settings,
):
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 1.01, "review": 0.5}}
    run_batch_matching(entity_type="customer", actor="test")
    candidate = MatchCandidate.objects.filter(status=CandidateStatus.OPEN).first()
    page = sign_in(browser, live_server, "alice", f"/steward/candidates/{candidate.pk}/")

    steps = page.locator("#weight-chart .row[data-step]")
    names = [steps.nth(i).get_attribute("data-step") for i in range(steps.count())]
    weights = [float(steps.nth(i).get_attribute("data-weight")) for i in range(steps.count())]
    total = float(page.locator("#chart-total").get_attribute("data-total"))
    probability = float(page.locator("#chart-probability").get_attribute("data-probability"))
    text = page.locator("#weight-chart").inner_text()

    prior = candidate.model.settings["probability_two_random_records_match"]
    assert names[0] == "prior"
    assert weights[0] == pytest.approx(math.log2(prior / (1 - prior)), abs=0.006)
    assert sum(weights) == pytest.approx(total, abs=1e-6)
    assert total == pytest.approx(candidate.match_weight, abs=0.01 * len(weights))
    assert probability == pytest.approx(2**total / (1 + 2**total), abs=1e-4)
    assert "Jaro" not in text and "_key" not in text and "NULL" not in text
    for column, entry in candidate.explanation.items():
        row = page.locator(f'#weight-chart .row[data-step="{column}"]')
        assert row.get_attribute("data-tone") == entry["tone"]
        assert entry["level"] in row.inner_text()


# ------------------------------------------------------------------------ 15.3 teamwork


def test_two_stewards_share_the_queue_and_a_large_bulk_needs_four_eyes(
    browser,  # noqa: F811
    live_server,
    steward_account,
    steward_bob,
    settings,
):
    settings.KEYSTONE_FOUR_EYES_BULK_SIZE = 2
    candidates = [
        make_candidate(
            {"name": f"Firm {n}", "city": "Berlin"},
            {"name": f"Firm {n} AG", "city": "Berlin"},
            probability=0.55 + n / 100,
        )
        for n in range(4)
    ]
    alice = sign_in(browser, live_server, "alice")
    with alice.expect_navigation():
        alice.click("#start-review")
    alice_candidate = int(alice.url.split("/candidates/")[1].split("/")[0])
    assert CandidateClaim.objects.get().candidate_id == alice_candidate

    bob = sign_in(browser, live_server, "bob")
    assert "reviewing: alice" in bob.locator(f'tr[data-candidate="{alice_candidate}"]').inner_text()
    with bob.expect_navigation():
        bob.click("#start-review")
    assert f"/candidates/{alice_candidate}/" not in bob.url
    bob_candidate = int(bob.url.split("/candidates/")[1].split("/")[0])

    # alice: everything matching the filters — the count first, then a request for bob
    alice.goto(f"{live_server.url}/steward/queue/")
    alice.check("input[name=scope][value=all]")
    alice.fill("#bulk-actions input[name=reason]", "sibling firms, not the same")
    with alice.expect_navigation():
        alice.click("#bulk-actions button[value=bulk_not_a_match]")
    shown = int(alice.locator("#confirm-count").inner_text())
    assert shown == MatchCandidate.objects.filter(status=CandidateStatus.OPEN).count() - 1
    assert MatchCandidate.objects.filter(status=CandidateStatus.NOT_A_MATCH).count() == 0
    with alice.expect_navigation():
        alice.click("#confirm-bulk")
    request = ApprovalRequest.objects.get()
    assert request.size == shown and request.status == "pending"

    bob.goto(f"{live_server.url}/steward/queue/approvals/")
    card = bob.locator(f'[data-request="{request.pk}"]')
    assert "sibling firms" in card.inner_text()
    with bob.expect_navigation():
        card.locator("button[value=approve]").click()
    decided = MatchCandidate.objects.filter(status=CandidateStatus.NOT_A_MATCH)
    assert decided.count() == shown
    assert bob_candidate not in set(decided.values_list("pk", flat=True))  # bob holds it
    assert len(candidates) == 4


# ------------------------------------------------------------------------ 15.4 priority


def test_the_queue_ranks_by_uncertainty_times_impact_and_shows_the_parts(
    browser,  # noqa: F811
    live_server,
    steward_account,
):
    plain = make_candidate({"name": "Plain Ltd"}, {"name": "Plain Limited"}, probability=0.6)
    busy = make_candidate({"name": "Busy Ltd"}, {"name": "Busy Limited"}, probability=0.8)
    ingest_records(
        entity_type="contract",
        system_code=busy.left.source_system.code,
        rows=[
            (
                1,
                {
                    "source_key": "big",
                    "contract_number": "B-1",
                    "total_value": "250000",
                    "status": "active",
                    "customer_key": busy.left.source_key,
                },
            )
        ],
        actor="test",
    )
    page = sign_in(browser, live_server, "alice")

    rows = page.locator("#queue-table tbody tr")
    first = rows.first
    assert first.get_attribute("data-candidate") == str(busy.pk)
    assert "250,000 contract value" in first.locator("[data-stakes]").inner_text()
    parts = first.locator("[data-parts]").inner_text()
    assert parts.startswith("uncertainty 0.40 × impact ")
    impact = float(parts.rsplit(" ", 1)[1])
    priority = float(first.locator("[data-priority]").get_attribute("data-priority"))
    assert priority == pytest.approx(0.4 * impact, abs=0.01)
    assert rows.nth(1).get_attribute("data-candidate") == str(plain.pk)


# --------------------------------------------------------------------------- 15.5 lists


def test_lists_show_active_records_names_and_samples_to_judge_inline(
    browser,  # noqa: F811
    live_server,
    steward_account,
):
    crm = ingest("crm", source_key="c1", name="Initech", city="Austin")
    erp = ingest("erp", source_key="e1", name="Initech LLC", city="Austin")
    survivor = merge(
        survivor=crm.golden,
        loser=erp.golden,
        actor="m",
        reason="auto",
        method=LinkMethod.AUTO,
        probability=0.97,
    )
    ingest_records(
        entity_type="product",
        system_code="crm",
        rows=[(1, {"source_key": "p1", "sku": "KS-1", "name": "Keystone Starter"})],
        actor="test",
    )
    ingest_records(
        entity_type="entitlement",
        system_code="crm",
        rows=[
            (
                1,
                {
                    "source_key": "en1",
                    "status": "active",
                    "quantity": "25",
                    "start_date": "2024-01-01",
                    "end_date": "2024-12-31",
                    "product_key": "p1",
                    "customer_key": "c1",
                },
            )
        ],
        actor="test",
    )
    draw_accuracy_sample(rate=1.0)
    page = sign_in(browser, live_server, "alice", "/steward/golden/")

    active = GoldenRecord.objects.filter(status=GoldenStatus.ACTIVE).count()
    assert int(page.locator("#golden-count").inner_text()) == active
    customer = GoldenRecord.objects.get(pk=survivor.pk).display_name
    assert (
        f"Keystone Starter · {customer} · 2024-01-01 – 2024-12-31"
        in page.locator("#golden-table").inner_text()
    )
    page.select_option("#g-status", "merged")
    with page.expect_navigation():
        page.click("#golden-filters input[type=submit]")
    assert page.locator("#golden-table tbody tr").count() == 1
    assert f"into {survivor.pk}" in page.locator("#golden-table").inner_text()

    page.goto(f"{live_server.url}/steward/accuracy/")
    sample = AutoLinkSample.objects.get()
    block = page.locator(f'[data-sample="{sample.pk}"]')
    assert "Initech LLC" in block.inner_text() and "Initech" in block.inner_text()
    with page.expect_navigation():
        block.locator("button[value=confirm_sample]").click()
    assert AutoLinkSample.objects.get().verdict == "confirmed"


# ---------------------------------------------------------------------------- 15.6 home


def test_home_page_for_the_signed_in_and_the_admins_view_site_lands_there(
    browser,  # noqa: F811
    live_server,
    steward_account,
):
    page = browser.new_page()
    page.goto(f"{live_server.url}/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")

    assert page.url == f"{live_server.url}/"
    links = {page.locator(f"#link-{n}").get_attribute("href") for n in ("desk", "api", "health")}
    assert links == {"/steward/", "/api/docs/", "/healthz"}
    page.goto(f"{live_server.url}/admin/")
    with page.expect_navigation():
        page.click("text=View site")
    assert page.url == f"{live_server.url}/"


# -------------------------------------------------------------------------- 15.7 models


def test_a_threshold_change_is_staged_read_and_activated_then_the_run_is_audited(
    browser,  # noqa: F811
    live_server,
    steward_account,
    customer_model,
    settings,
):
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 1.01, "review": 0.5}}
    run_batch_matching(entity_type="customer", actor="test")
    page = sign_in(browser, live_server, "alice", "/steward/models/")

    form = page.locator("#thresholds-customer")
    form.locator("input[name=auto_link]").fill("0.95")
    form.locator("input[name=review]").fill("0.5")
    form.locator("input[name=reason]").fill("link the sure pairs")
    with page.expect_navigation():
        form.locator("button[value=stage_thresholds]").click()
    staged = MatchModel.objects.get(version=2)
    assert int(page.locator("#diff-merges").inner_text()) == staged.diff["merges"]["count"] > 0
    assert staged.state == "staged"
    page.fill("#model-decision input[name=reason]", "checked ten examples")
    with page.expect_navigation():
        page.click("#model-decision button[value=activate_model]")
    staged.refresh_from_db()
    assert staged.state == "active" and staged.activation_reason == "checked ten examples"
    assert page.locator("#model-state").inner_text() == "active"

    summary = run_batch_matching(entity_type="customer", actor="test")
    page.goto(f"{live_server.url}/steward/runs/{summary.run_id}/")
    assert int(page.locator("#run-merged").inner_text()) == summary.merges
    assert summary.merges == staged.diff["merges"]["goldens_absorbed"]
    assert page.locator("#run-merges tbody tr").count() == min(summary.merges, 50)
    assert MatchRun.objects.get(pk=summary.run_id).finished_at <= timezone.now()
