"""`matching.review`: the one rule for open / superseded / reopened / decided candidates,
over plain record pairs (no model: the pairs come as scoring would give them)."""

import pytest

from matching.decisions import decide, reopen_stale_decisions
from matching.models import CandidateStatus, MatchCandidate, MatchDecision, Verdict
from matching.review import ReviewPair, store_candidates
from mdm.models import GoldenRecord, SourceRecord
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge

pytestmark = pytest.mark.django_db


def record(key: str) -> SourceRecord:
    ingest_records(
        entity_type="customer",
        system_code="crm",
        rows=[(1, {"source_key": key, "name": f"Company {key}"})],
        actor="test",
        create_system=True,
    )
    return SourceRecord.objects.get(source_key=key)


def pair(a: SourceRecord, b: SourceRecord, probability: float, reason: str = "") -> ReviewPair:
    left, right = sorted((a, b), key=lambda r: r.pk)
    explanation = {
        "name": {"level": "fuzzy", "left": left.pk, "right": right.pk, "match_weight": 1}
    }
    return ReviewPair(left.pk, right.pk, probability, probability * 10, explanation, reason)


def steward_merge(survivor: SourceRecord, loser: SourceRecord) -> None:
    merge(
        survivor=GoldenRecord.objects.get(pk=survivor.golden_id),
        loser=GoldenRecord.objects.get(pk=loser.golden_id),
        actor="steward",
        reason="same",
    )


def open_candidates() -> list[MatchCandidate]:
    return list(MatchCandidate.objects.filter(status=CandidateStatus.OPEN))


def test_pairs_between_two_golden_records_make_one_candidate_with_the_best_as_evidence():
    a1, a2, b1 = record("a1"), record("a2"), record("b1")
    steward_merge(a1, a2)

    stored = store_candidates(
        entity_type="customer",
        pairs=[pair(a1, b1, 0.6), pair(a2, b1, 0.8, reason="conflicting tax IDs")],
        rescored=[a1.pk, a2.pk, b1.pk],
    )

    (candidate,) = open_candidates()
    assert stored.open == stored.created == 1
    assert {candidate.left_id, candidate.right_id} == {a2.pk, b1.pk}
    assert candidate.probability == 0.8
    assert [p["probability"] for p in candidate.pairs] == [0.8, 0.6]
    assert candidate.reason == "conflicting tax IDs"
    left = SourceRecord.objects.get(pk=candidate.left_id)
    assert left.golden_id == candidate.left_golden_id < candidate.right_golden_id
    assert candidate.explanation["name"]["left"] == candidate.left_id  # turned with the pair


def test_rescoring_without_the_pair_supersedes_and_its_return_reopens_the_same_candidate():
    a, b = record("a"), record("b")
    store_candidates(entity_type="customer", pairs=[pair(a, b, 0.7)], rescored=[a.pk])
    (candidate,) = open_candidates()

    gone = store_candidates(entity_type="customer", pairs=[], rescored=[a.pk])
    superseded = MatchCandidate.objects.get(pk=candidate.pk).status
    back = store_candidates(entity_type="customer", pairs=[pair(a, b, 0.75)], rescored=[b.pk])

    assert (gone.superseded, superseded) == (1, CandidateStatus.SUPERSEDED)
    assert back.reopened == 1
    assert [c.pk for c in open_candidates()] == [candidate.pk]
    assert open_candidates()[0].probability == 0.75


def test_pairs_of_records_not_rescored_are_kept():
    a, b, c = record("a"), record("b"), record("c")
    steward_merge(b, c)
    store_candidates(
        entity_type="customer", pairs=[pair(a, b, 0.7), pair(a, c, 0.65)], rescored=[a.pk]
    )

    store_candidates(entity_type="customer", pairs=[], rescored=[c.pk])

    (candidate,) = open_candidates()
    assert [(p["left"], p["right"]) for p in candidate.pairs] in (
        [(a.pk, b.pk)],
        [(b.pk, a.pk)],
    )


def test_a_decided_pair_of_golden_records_gets_no_new_candidate():
    a1, a2, b1 = record("a1"), record("a2"), record("b1")
    steward_merge(a1, a2)
    store_candidates(entity_type="customer", pairs=[pair(a1, b1, 0.7)], rescored=[a1.pk])
    decide(candidate=open_candidates()[0], verdict=Verdict.NOT_A_MATCH, actor="steward")

    stored = store_candidates(entity_type="customer", pairs=[pair(a2, b1, 0.9)], rescored=[a2.pk])

    assert (stored.open, open_candidates()) == (0, [])


def test_merging_records_of_two_candidates_leaves_one_candidate_per_pair():
    a, b, x = record("a"), record("b"), record("x")
    store_candidates(
        entity_type="customer", pairs=[pair(a, x, 0.6), pair(b, x, 0.7)], rescored=[x.pk]
    )
    assert len(open_candidates()) == 2

    steward_merge(a, b)  # the receiver plans both again in the merge's transaction

    (candidate,) = open_candidates()
    assert {candidate.left_golden_id, candidate.right_golden_id} == {
        SourceRecord.objects.get(pk=a.pk).golden_id,
        x.golden_id,
    }
    assert candidate.probability == 0.7 and len(candidate.pairs) == 2
    assert MatchCandidate.objects.filter(status=CandidateStatus.SUPERSEDED).count() == 1


def test_a_candidate_decided_again_after_its_evidence_changed_stays_decided():
    a1, a2, b = record("a1"), record("a2"), record("b")
    steward_merge(a1, a2)
    store_candidates(entity_type="customer", pairs=[pair(a1, b, 0.7)], rescored=[a1.pk])
    candidate = open_candidates()[0]
    decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor="steward")
    ingest_records(  # the evidence changes: back to review
        entity_type="customer",
        system_code="crm",
        rows=[(1, {"source_key": "a1", "name": "Company a1 renamed"})],
        actor="test",
    )
    assert reopen_stale_decisions("customer") == 1
    store_candidates(entity_type="customer", pairs=[pair(a2, b, 0.9)], rescored=[a2.pk])

    decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor="steward", reason="still no")

    assert reopen_stale_decisions("customer") == 0
    assert MatchCandidate.objects.get(pk=candidate.pk).status == CandidateStatus.NOT_A_MATCH
    assert MatchDecision.objects.filter(is_current=True).count() == 1
