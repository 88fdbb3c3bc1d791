"""Steward decisions: merge / not a match, with the evidence they were made on."""

import pytest

from matching.decisions import cannot_link_pairs, decide, reopen_stale_decisions
from matching.models import CandidateStatus, MatchDecision, Verdict
from mdm.errors import InvalidResolution
from mdm.models import GoldenStatus, LinkMethod, SourceRecord
from mdm.services.ingest import ingest_records
from tests.matching.conftest import open_candidate

pytestmark = pytest.mark.django_db

JANE = {"kind": "person", "given_name": "Jane", "family_name": "Doe", "date_of_birth": "1985-03-12"}


def load(system, **row):
    ingest_records(
        entity_type="customer",
        system_code=system,
        rows=[(1, row)],
        actor="test",
        create_system=True,
    )
    return SourceRecord.objects.get(source_system__code=system, source_key=row["source_key"])


@pytest.fixture
def candidate():
    left = load("crm", source_key="c1", email="jane@doe.org", **JANE)
    right = load("erp", source_key="e1", email="jdoe@work.com", **JANE)
    return open_candidate(left, right, probability=0.8, match_weight=2.0)


def test_match_merges_into_the_older_golden_record_as_a_steward_link(candidate, steward):
    older = SourceRecord.objects.get(source_key="c1").golden_id  # loaded first

    decision = decide(candidate=candidate, verdict=Verdict.MATCH, actor=steward, reason="same DOB")

    moved = SourceRecord.objects.get(source_key="e1")
    assert moved.golden_id == older
    assert moved.link_method == LinkMethod.STEWARD
    assert decision.decided_by == steward and decision.reason == "same DOB"
    candidate.refresh_from_db()
    assert candidate.status == CandidateStatus.LINKED
    assert candidate.right.golden.status == GoldenStatus.ACTIVE


def test_not_a_match_becomes_a_cannot_link_constraint(candidate, steward):
    decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor=steward, reason="twins")

    assert cannot_link_pairs("customer") == {tuple(sorted((candidate.left_id, candidate.right_id)))}
    candidate.refresh_from_db()
    assert candidate.status == CandidateStatus.NOT_A_MATCH
    assert MatchDecision.history.get().history_user == steward


def test_a_new_decision_replaces_the_previous_one(candidate, steward):
    decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor=steward, reason="twins")

    decide(
        candidate=candidate, verdict=Verdict.MATCH, actor=steward, reason="same person after all"
    )

    assert MatchDecision.objects.filter(is_current=True).get().verdict == Verdict.MATCH
    assert cannot_link_pairs("customer") == set()


def test_not_a_match_for_records_already_in_one_golden_record_is_refused(candidate, steward):
    decide(candidate=candidate, verdict=Verdict.MATCH, actor=steward)

    with pytest.raises(InvalidResolution, match="split"):
        decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor=steward)


def test_unchanged_evidence_keeps_the_pair_out_of_the_queue(candidate, steward):
    decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor=steward, reason="twins")
    load("erp", source_key="e1", email="jdoe@work.com", phone="", **JANE)

    assert reopen_stale_decisions("customer") == 0


def test_changed_evidence_returns_the_pair_to_review_but_still_blocks_auto_linking(
    candidate, steward
):
    decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor=steward, reason="twins")
    load("erp", source_key="e1", email="jane@doe.org", **JANE)

    reopened = reopen_stale_decisions("customer")

    candidate.refresh_from_db()
    assert reopened == 1
    assert candidate.status == CandidateStatus.OPEN
    assert cannot_link_pairs("customer") == {tuple(sorted((candidate.left_id, candidate.right_id)))}
