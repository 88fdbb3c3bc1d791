"""The candidate page decides on golden records: both side by side with survived values and
lineage, every member, relations, the best pair highlighted, the other scored pairs listed,
and the record a merge would make — in a fixed number of queries."""

import pytest
from django.urls import reverse

from matching.models import CandidateStatus, MatchCandidate
from matching.review import ReviewPair, store_candidates
from mdm.models import GoldenRecord, SourceRecord
from mdm.selectors import merge_preview
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge
from tests.stewardship.conftest import explanation, ingest

pytestmark = pytest.mark.django_db


def _golden(system: str, names: list[str], **extra) -> GoldenRecord:
    """A golden record of len(names) members of `system` (merged)."""
    records = [ingest(system, name=name, **extra) for name in names]
    golden = records[0].golden
    for record in records[1:]:
        golden = merge(survivor=golden, loser=record.golden, actor="t", reason="t")
    return golden


def _candidate(left: GoldenRecord, right: GoldenRecord, extra_pairs: int = 1) -> MatchCandidate:
    """An open candidate between two golden records with several scored member pairs."""
    lefts = list(left.members.order_by("pk"))
    rights = list(right.members.order_by("pk"))
    pairs = []
    for n, (a, b) in enumerate(zip(lefts, rights, strict=False)):
        if n > extra_pairs:
            break
        first, second = sorted((a, b), key=lambda r: r.pk)
        pairs.append(
            ReviewPair(
                first.pk,
                second.pk,
                0.8 - n / 10,
                2.0 - n,
                explanation(first.attributes, second.attributes),
            )
        )
    store_candidates(entity_type="customer", pairs=pairs, rescored=set())
    return MatchCandidate.objects.get(status=CandidateStatus.OPEN)


@pytest.fixture
def pair_of_goldens():
    left = _golden("crm", ["Acme Corporation", "ACME Corp"], city="Berlin")
    right = _golden("erp", ["Acme Corp.", "Acme Corporation GmbH", "ACME"], city="Bonn")
    ingest_records(
        entity_type="contract",
        system_code="crm",
        rows=[
            (n, {"source_key": f"k{n}", "contract_number": f"C-{n}", "customer_key": key})
            for n, key in enumerate(left.members.values_list("source_key", flat=True))
        ],
        actor="test",
    )
    return left, right


def test_both_golden_records_side_by_side_with_members_relations_and_the_merge(
    steward_client, pair_of_goldens
):
    left, right = pair_of_goldens
    candidate = _candidate(left, right)

    response = steward_client.get(reverse("stewardship:candidate", args=[candidate.pk]))

    page = response.context["page"]
    html = response.content.decode()
    assert {page.left.golden.pk, page.right.golden.pk} == {left.pk, right.pk}
    assert [m.record.pk for m in page.left.members][0] == candidate.left_id  # best pair first
    for side in (page.left, page.right):
        assert {m.record.pk for m in side.members} == set(
            SourceRecord.objects.filter(golden_id=side.golden.pk).values_list("pk", flat=True)
        )
    sides = {side.golden.pk: side for side in (page.left, page.right)}
    assert f'data-record="{candidate.left_id}" class="ks-selected trigger"' in html
    assert f'data-record="{candidate.right_id}" class="ks-selected trigger"' in html
    assert sides[left.pk].related.counts.get("contracts") == 2
    assert len(response.context["pairs"]) == 2
    preview = merge_preview(page.survivor, page.loser)
    assert page.preview.values == preview.values
    city = next(row for row in page.rows if row.field == "city")
    assert city.conflict and {city.left, city.right} == {"Berlin", "Bonn"}
    assert 'id="side-by-side"' in html and "If merged" in html

    steward_client.post(reverse("stewardship:candidate", args=[candidate.pk]), {"action": "merge"})
    survivor = GoldenRecord.objects.get(pk=page.survivor.pk)
    assert survivor.values == preview.values  # the preview was what the merge made


def test_the_candidate_page_queries_do_not_grow_with_members_or_relations(
    steward_client, django_assert_max_num_queries
):
    small = _candidate(_golden("crm", ["Firm A", "Firm A."]), _golden("erp", ["Firm A AG"]))
    url = reverse("stewardship:candidate", args=[small.pk])
    steward_client.get(url)  # warm: session, claim row
    with django_assert_max_num_queries(60) as counted:
        steward_client.get(url)
    budget = len(counted.captured_queries)
    small.status = CandidateStatus.SUPERSEDED
    small.save()

    big_left = _golden("crm", [f"Big Firm {n}" for n in range(10)])
    big_right = _golden("erp", [f"Big Firm {n} AG" for n in range(8)])
    ingest_records(
        entity_type="contract",
        system_code="crm",
        rows=[
            (n, {"source_key": f"big{n}", "contract_number": f"B-{n}", "customer_key": key})
            for n, key in enumerate(big_left.members.values_list("source_key", flat=True))
        ],
        actor="test",
    )
    big = _candidate(big_left, big_right, extra_pairs=6)
    url = reverse("stewardship:candidate", args=[big.pk])
    steward_client.get(url)

    with django_assert_max_num_queries(budget):
        response = steward_client.get(url)

    sides = {
        side.golden.pk: side
        for side in (response.context["page"].left, response.context["page"].right)
    }
    assert len(sides[big_left.pk].members) == 10
    assert len(sides[big_right.pk].members) == 8
    assert len(response.context["pairs"]) == 7
