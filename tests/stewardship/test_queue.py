"""The review queue: priority order, filters, decisions, the next candidate, bulk actions."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from matching.models import CandidateStatus, MatchCandidate, MatchDecision, Verdict
from matching.selectors import QueueFilters, RankedQueue, review_queue
from mdm.models import GoldenRecord
from mdm.services.ingest import ingest_records
from tests.stewardship.conftest import make_candidate

pytestmark = pytest.mark.django_db


def company(n: int, **extra) -> dict:
    return {"name": f"Company {n}", "email": f"x{n}@c{n}.com", **extra}


def test_the_most_uncertain_pair_comes_first():
    sure = make_candidate(company(1), company(1), probability=0.93)
    unsure = make_candidate(company(2), company(2), probability=0.51)

    assert list(review_queue()) == [unsure, sure]


def _contracts(candidate, values: list[int], status: str = "active") -> None:
    ingest_records(
        entity_type="contract",
        system_code=candidate.left.source_system.code,
        rows=[
            (
                n,
                {
                    "source_key": f"ctr-{candidate.pk}-{n}",
                    "contract_number": f"C-{candidate.pk}-{n}",
                    "status": status,
                    "total_value": str(value),
                    "customer_key": candidate.left.source_key,
                },
            )
            for n, value in enumerate(values)
        ],
        actor="test",
    )


def test_more_at_stake_breaks_a_tie_in_uncertainty():
    plain = make_candidate(company(1), company(1), probability=0.7)
    busy = make_candidate(company(2), company(2), probability=0.7)
    _contracts(busy, [10_000, 12_000, 8_000])

    queue = list(review_queue())

    assert queue == [busy, plain]
    assert queue[0].contract_value == 30_000
    assert queue[1].contract_value == 0


def test_priority_is_uncertainty_times_impact_from_the_declared_stakes():
    import math

    busy = make_candidate(company(1), company(1), probability=0.8)
    _contracts(busy, [60_000, 30_000])
    unsure = make_candidate(company(2), company(2), probability=0.55)

    first, second = review_queue()

    impact = 1 + 0.5 * math.log(2) + math.log(1 + 90_000 / 10_000)  # two systems, €90k
    assert first == busy  # surer, but much at stake: ranks above an unsure pair with none
    assert first.uncertainty == pytest.approx(0.4)
    assert first.impact == pytest.approx(impact)
    assert first.priority == pytest.approx(0.4 * impact)
    assert second == unsure and second.impact == pytest.approx(1 + 0.5 * math.log(2))


def test_the_queue_shows_the_priority_with_its_parts(steward_client):
    busy = make_candidate(company(1), company(1), probability=0.8)
    _contracts(busy, [36_000])

    html = steward_client.get(reverse("stewardship:queue")).content.decode()

    row = html[html.index(f'data-candidate="{busy.pk}"') :]
    assert "uncertainty 0.40 × impact " in row[: row.index("</tr>")]
    assert "36,000 contract value · 2 systems" in row[: row.index("</tr>")]


def test_a_queue_page_ranks_as_the_full_queue():
    for n, probability in enumerate((0.93, 0.51, 0.7, 0.62, 0.85)):
        make_candidate(company(n), company(n), probability=probability)

    page = RankedQueue(QueueFilters())[1:4]

    assert page == list(review_queue())[1:4]
    assert [c.priority for c in page] == [c.priority for c in list(review_queue())[1:4]]
    assert RankedQueue(QueueFilters(band="uncertain")).count() == 1


def test_filters_narrow_the_queue():
    crm_erp = make_candidate(company(1), company(1), probability=0.55)
    make_candidate(company(2), company(2), probability=0.9)

    assert list(review_queue(QueueFilters(band="uncertain"))) == [crm_erp]
    assert list(review_queue(QueueFilters(entity_type="product"))) == []
    assert len(review_queue(QueueFilters(system="erp"))) == 2
    assert list(review_queue(QueueFilters(age="older"))) == []


def test_queue_page_lists_candidates_and_filters(steward_client, acme_pair):
    response = steward_client.get(reverse("stewardship:queue"), {"band": "likely"})

    assert response.status_code == 200
    assert b"Acme Corporation" in response.content
    assert b"Start reviewing" in response.content


def test_merge_from_the_candidate_page_opens_the_next_candidate(
    steward_client, steward_account, acme_pair, globex_pair
):
    response = steward_client.post(
        reverse("stewardship:candidate", args=[acme_pair.pk]),
        {"action": "merge", "reason": "same company"},
    )

    assert response.status_code == 302
    assert response.url == reverse("stewardship:queue_next")
    follow = steward_client.get(response.url)
    assert follow.url == reverse("stewardship:candidate", args=[globex_pair.pk])
    acme_pair.refresh_from_db()
    assert acme_pair.status == CandidateStatus.LINKED
    decision = MatchDecision.objects.get(candidate=acme_pair)
    assert (decision.decided_by, decision.reason) == (steward_account, "same company")
    assert (
        acme_pair.left.golden_id
        == type(acme_pair.right).objects.get(pk=acme_pair.right_id).golden_id
    )


def test_not_a_match_keeps_both_golden_records(steward_client, globex_pair):
    steward_client.post(
        reverse("stewardship:candidate", args=[globex_pair.pk]),
        {"action": "not_a_match", "reason": "different groups"},
    )

    globex_pair.refresh_from_db()
    assert globex_pair.status == CandidateStatus.NOT_A_MATCH
    assert MatchDecision.objects.get().verdict == Verdict.NOT_A_MATCH
    assert GoldenRecord.objects.filter(status="active").count() == 2


def test_skip_moves_on_without_deciding(steward_client, acme_pair, globex_pair):
    steward_client.post(reverse("stewardship:candidate", args=[globex_pair.pk]), {"action": "skip"})

    follow = steward_client.get(reverse("stewardship:queue_next"))

    assert follow.url == reverse("stewardship:candidate", args=[acme_pair.pk])
    assert not MatchDecision.objects.exists()


def test_filters_are_kept_from_decision_to_next_candidate(steward_client, acme_pair):
    url = reverse("stewardship:candidate", args=[acme_pair.pk]) + "?entity=customer&band=likely"

    response = steward_client.post(url, {"action": "skip"})

    assert response.url == reverse("stewardship:queue_next") + "?entity=customer&band=likely"


def test_empty_queue_returns_to_the_queue_page(steward_client):
    response = steward_client.get(reverse("stewardship:queue_next"))

    assert response.url == reverse("stewardship:queue")


def test_bulk_not_a_match_on_selected_rows(steward_client, acme_pair, globex_pair):
    steward_client.post(
        reverse("stewardship:queue"),
        {"action": "bulk_not_a_match", "selected": [acme_pair.pk], "reason": "bulk check"},
    )

    assert MatchCandidate.objects.get(pk=acme_pair.pk).status == CandidateStatus.NOT_A_MATCH
    assert MatchCandidate.objects.get(pk=globex_pair.pk).status == CandidateStatus.OPEN


def test_bulk_merge_for_everything_the_filters_match(steward_client, acme_pair, globex_pair):
    steward_client.post(
        reverse("stewardship:queue") + "?band=likely",
        {"action": "bulk_merge", "scope": "all", "reason": "bulk", "confirmed": "1", "count": "1"},
    )

    assert MatchCandidate.objects.get(pk=acme_pair.pk).status == CandidateStatus.LINKED
    assert MatchCandidate.objects.get(pk=globex_pair.pk).status == CandidateStatus.OPEN


def test_candidate_page_colours_attributes_by_the_model_and_draws_the_chart(
    steward_client, acme_pair
):
    response = steward_client.get(reverse("stewardship:candidate", args=[acme_pair.pk]))

    html = response.content.decode()
    assert 'data-attribute="email" data-tone="same"' in html
    assert 'data-attribute="name" data-tone="differ"' in html
    assert 'data-attribute="postal_code"' not in html  # empty on both sides
    assert 'id="weight-chart"' in html
    assert 'data-shortcut="m"' in html


def _queue_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("stewardship:queue")).status_code == 200
    return len(queries)


def test_queue_query_count_does_not_grow_with_candidates(steward_client):
    make_candidate(company(0), company(0))
    few = _queue_queries(steward_client)
    for n in range(1, 20):
        make_candidate(company(n), company(n), probability=0.5 + n / 50)

    many = _queue_queries(steward_client)

    assert many == few
    assert many <= 18  # session, user, page, counts, claims, assignments, stewards, approvals
