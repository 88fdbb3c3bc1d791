"""Stewards sharing the queue: claims, assignments, "my queue", four eyes and the confirmed
bulk decision over everything the filters match."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from matching.models import CandidateStatus, MatchCandidate, MatchDecision
from mdm.errors import CandidateClaimed, InvalidResolution
from mdm.models import GoldenRecord, GoldenStatus
from stewardship.models import ApprovalRequest, ApprovalStatus, CandidateClaim
from stewardship.teamwork import approve, claim, next_for
from tests.stewardship.conftest import _account, ingest, make_candidate

pytestmark = pytest.mark.django_db


def company(n: int) -> dict:
    return {"name": f"Firm {n}", "email": f"info@firm{n}.com", "city": "Berlin"}


@pytest.fixture
def bob(roles, django_user_model):
    return _account(django_user_model, "bob", "steward")


@pytest.fixture
def bob_client(bob):
    client = Client()
    client.force_login(bob)
    return client


def test_opening_a_candidate_claims_it_and_the_others_next_passes_it_over(
    steward_client, bob_client, acme_pair, globex_pair
):
    steward_client.get(reverse("stewardship:candidate", args=[acme_pair.pk]))

    response = bob_client.get(reverse("stewardship:queue_next"))

    assert CandidateClaim.objects.get(candidate=acme_pair).steward.get_username() == "alice"
    assert response["Location"].startswith(reverse("stewardship:candidate", args=[globex_pair.pk]))
    page = bob_client.get(reverse("stewardship:candidate", args=[acme_pair.pk])).content.decode()
    assert "alice is reviewing this candidate" in page
    assert 'id="decision-form"' not in page


def test_a_claimed_candidate_cannot_be_decided_by_another_steward(
    steward_client, bob_client, acme_pair
):
    steward_client.get(reverse("stewardship:candidate", args=[acme_pair.pk]))

    response = bob_client.post(
        reverse("stewardship:candidate", args=[acme_pair.pk]), {"action": "merge"}, follow=True
    )

    assert "being reviewed by alice" in response.content.decode()
    assert MatchCandidate.objects.get(pk=acme_pair.pk).status == CandidateStatus.OPEN


def test_a_claim_expires_and_a_decision_ends_it(steward_account, bob, acme_pair):
    claim(candidate_id=acme_pair.pk, steward=steward_account)
    with pytest.raises(CandidateClaimed):
        claim(candidate_id=acme_pair.pk, steward=bob)
    CandidateClaim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    taken = claim(candidate_id=acme_pair.pk, steward=bob)

    assert taken.steward == bob


def test_my_queue_holds_what_is_assigned_to_me_and_others_skip_it(
    steward_client, bob_client, bob, acme_pair, globex_pair
):
    steward_client.post(
        reverse("stewardship:queue"),
        {"action": "assign", "selected": [acme_pair.pk], "assignee": bob.pk},
    )

    mine = bob_client.get(reverse("stewardship:queue") + "?mine=1")
    alices_next = steward_client.get(reverse("stewardship:queue_next"))
    bobs_next = bob_client.get(reverse("stewardship:queue_next") + "?mine=1")

    assert [c.pk for c in mine.context["candidates"]] == [acme_pair.pk]
    assert alices_next["Location"].startswith(
        reverse("stewardship:candidate", args=[globex_pair.pk])
    )
    assert bobs_next["Location"].startswith(reverse("stewardship:candidate", args=[acme_pair.pk]))
    assert "mine=1" in bobs_next["Location"]


def test_bulk_over_everything_shows_the_count_and_decides_only_when_confirmed(
    steward_client, acme_pair, globex_pair
):
    url = reverse("stewardship:queue")

    asked = steward_client.post(url, {"action": "bulk_not_a_match", "scope": "all"})

    assert asked.status_code == 200
    assert 'id="confirm-count">2<' in asked.content.decode()
    assert MatchCandidate.objects.filter(status=CandidateStatus.OPEN).count() == 2
    stale = steward_client.post(
        url, {"action": "bulk_not_a_match", "scope": "all", "confirmed": "1", "count": "5"}
    )
    assert "The queue changed" in stale.content.decode()
    assert MatchCandidate.objects.filter(status=CandidateStatus.OPEN).count() == 2
    steward_client.post(
        url, {"action": "bulk_not_a_match", "scope": "all", "confirmed": "1", "count": "2"}
    )
    assert MatchCandidate.objects.filter(status=CandidateStatus.NOT_A_MATCH).count() == 2


def test_a_large_bulk_decision_waits_for_a_second_steward(
    steward_client, bob_client, steward_account, settings
):
    settings.KEYSTONE_FOUR_EYES_BULK_SIZE = 2
    pairs = [make_candidate(company(n), company(n + 100)) for n in range(3)]

    steward_client.post(
        reverse("stewardship:queue"),
        {"action": "bulk_not_a_match", "selected": [p.pk for p in pairs], "reason": "siblings"},
    )

    request = ApprovalRequest.objects.get()
    assert (request.size, request.status, request.requested_by) == (3, "pending", steward_account)
    assert MatchCandidate.objects.filter(status=CandidateStatus.OPEN).count() == 3
    own = steward_client.post(
        reverse("stewardship:approvals"), {"action": "approve", "request": request.pk}, follow=True
    )
    assert "another steward approves" in own.content.decode()
    assert ApprovalRequest.objects.get().status == ApprovalStatus.PENDING
    assert steward_client.get(reverse("stewardship:queue_next")).status_code == 302
    bob_client.post(
        reverse("stewardship:approvals"),
        {"action": "approve", "request": request.pk, "reason": "checked"},
    )
    assert MatchCandidate.objects.filter(status=CandidateStatus.NOT_A_MATCH).count() == 3
    decision = MatchDecision.objects.first()
    assert decision.decided_by == steward_account
    assert decision.reason == "siblings (approved by bob)"


def test_small_bulk_runs_add_up_to_the_four_eyes_limit(
    steward_client, bob_client, steward_account, settings
):
    """A steward cannot avoid four eyes by splitting a large bulk decision into runs at the
    limit: runs within the window add up; another steward has their own allowance; runs
    older than the window no longer count."""
    from stewardship.models import BulkDecision

    settings.KEYSTONE_FOUR_EYES_BULK_SIZE = 2
    pairs = [make_candidate(company(n), company(n + 100)) for n in range(7)]
    url = reverse("stewardship:queue")

    def bulk(client, chosen):
        selected = [p.pk for p in chosen]
        client.post(url, {"action": "bulk_not_a_match", "selected": selected, "reason": "x"})

    bulk(steward_client, pairs[0:2])  # at the limit: decided
    bulk(steward_client, pairs[2:3])  # one more within the hour: waits for approval

    assert MatchCandidate.objects.filter(status=CandidateStatus.NOT_A_MATCH).count() == 2
    assert ApprovalRequest.objects.get().size == 1
    bulk(bob_client, pairs[3:5])  # bob's own allowance
    assert MatchCandidate.objects.filter(status=CandidateStatus.NOT_A_MATCH).count() == 4
    BulkDecision.objects.filter(steward=steward_account).update(
        created_at=timezone.now()
        - timedelta(minutes=settings.KEYSTONE_FOUR_EYES_WINDOW_MINUTES + 1)
    )
    bulk(steward_client, pairs[5:7])  # the window has passed
    assert MatchCandidate.objects.filter(status=CandidateStatus.NOT_A_MATCH).count() == 6


def give_conflicting_tax_ids(candidate):
    """The two records of `candidate` now carry different valid German VAT numbers."""
    for record, tax_id in ((candidate.left, "DE123456788"), (candidate.right, "DE811200006")):
        row = {**record.raw, "source_key": record.source_key, "tax_id": tax_id}
        ingest(record.source_system.code, **row)


def test_the_conflict_is_what_the_records_hold_not_what_a_text_says(acme_pair):
    from stewardship.services import conflict_of

    acme_pair.explanation["constraint"] = {"level": "conflicting tax IDs", "match_weight": 0.0}
    acme_pair.save()
    assert conflict_of(acme_pair) == ""  # a text is no conflict
    give_conflicting_tax_ids(acme_pair)
    assert conflict_of(acme_pair) == "conflicting tax IDs: DE123456788 / DE811200006"


def test_a_merge_over_an_identifier_conflict_needs_a_reason_and_four_eyes(
    steward_client, steward_account, bob, acme_pair
):
    give_conflicting_tax_ids(acme_pair)
    url = reverse("stewardship:candidate", args=[acme_pair.pk])

    page = steward_client.get(url).content.decode()
    steward_client.post(url, {"action": "merge"})
    assert ApprovalRequest.objects.count() == 0  # no reason, nothing filed
    steward_client.post(url, {"action": "merge", "reason": "same company, tax ID re-issued"})

    assert 'id="conflict"' in page and "conflicting tax IDs" in page
    request = ApprovalRequest.objects.get()
    assert request.kind == "override"
    assert MatchCandidate.objects.get(pk=acme_pair.pk).status == CandidateStatus.OPEN
    with pytest.raises(InvalidResolution):
        approve(request=request, steward=steward_account)
    outcome = approve(request=request, steward=bob, note="seen the registry")
    assert outcome.decided == 1
    assert MatchCandidate.objects.get(pk=acme_pair.pk).status == CandidateStatus.LINKED


def test_merge_with_over_a_conflict_warns_needs_a_reason_and_a_second_steward(
    steward_client, steward_account, bob, acme_pair
):

    give_conflicting_tax_ids(acme_pair)
    left, right = acme_pair.left_golden_id, acme_pair.right_golden_id
    url = reverse("stewardship:golden", args=[left])

    page = steward_client.get(url, {"merge_q": right, "merge_preview": right}).content.decode()
    assert 'id="merge-conflict"' in page and "conflicting tax IDs" in page
    no_reason = steward_client.post(url, {"action": "merge_golden", "other": right}, follow=True)
    assert "say why" in no_reason.content.decode()
    assert ApprovalRequest.objects.count() == 0
    steward_client.post(url, {"action": "merge_golden", "other": right, "reason": "re-issued"})

    request = ApprovalRequest.objects.get()
    assert (request.kind, request.survivor, request.loser) == ("override", left, right)
    assert GoldenRecord.objects.get(pk=right).status == GoldenStatus.ACTIVE  # nothing merged
    with pytest.raises(InvalidResolution):
        approve(request=request, steward=steward_account)
    assert approve(request=request, steward=bob, note="registry checked").decided == 1
    merged = GoldenRecord.objects.get(pk=right)
    assert (merged.status, merged.merged_into_id) == (GoldenStatus.MERGED, left)
    assert "re-issued (approved by bob)" in merged.history.first().history_change_reason


def test_merge_with_without_a_conflict_merges_at_once(steward_client, acme_pair):

    left, right = acme_pair.left_golden_id, acme_pair.right_golden_id
    steward_client.post(
        reverse("stewardship:golden", args=[left]), {"action": "merge_golden", "other": right}
    )
    assert GoldenRecord.objects.get(pk=right).status == GoldenStatus.MERGED
    assert ApprovalRequest.objects.count() == 0


def test_a_bulk_merge_never_overrides_a_conflict(steward_client, acme_pair):
    give_conflicting_tax_ids(acme_pair)

    response = steward_client.post(
        reverse("stewardship:queue"),
        {"action": "bulk_merge", "selected": [acme_pair.pk], "reason": "x"},
        follow=True,
    )

    assert "needs a second steward" in response.content.decode()
    assert MatchCandidate.objects.get(pk=acme_pair.pk).status == CandidateStatus.OPEN


def _queue_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("stewardship:queue")).status_code == 200
    return len(queries)


def test_queue_queries_stay_constant_with_claims_and_assignments(
    steward_client, steward_account, bob
):
    make_candidate(company(0), company(200))
    few = _queue_queries(steward_client)
    for n in range(1, 15):
        pair = make_candidate(company(n), company(n + 200))
        claim(candidate_id=pair.pk, steward=bob if n % 2 else steward_account)

    many = _queue_queries(steward_client)

    assert many == few


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_stewards_pressing_next_at_once_get_different_candidates(roles, django_user_model):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent claims need concurrent transactions: PostgreSQL only")
    alice = _account(django_user_model, "alice", "steward")
    bob = _account(django_user_model, "bob", "steward")
    for n in range(4):
        make_candidate(company(n), company(n + 300), probability=0.5 + n / 100)
    start, found = threading.Barrier(2), {}

    def take(steward):
        try:
            start.wait(5)
            from matching.selectors import QueueFilters

            found[steward.get_username()] = next_for(steward, QueueFilters()).pk
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take, args=(s,)) for s in (alice, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(found) == {"alice", "bob"}
    assert found["alice"] != found["bob"]
    holders = dict(CandidateClaim.objects.values_list("candidate_id", "steward__username"))
    assert holders == {found["alice"]: "alice", found["bob"]: "bob"}


@pytest.mark.parametrize("named", ["", "abc", "²", "999999"])
def test_approving_a_request_that_is_no_request_is_404_not_500(bob_client, named):
    response = bob_client.post(
        reverse("stewardship:approvals"), {"action": "approve", "request": named}
    )

    assert response.status_code == 404
