"""Decisions and candidates at golden-record level: a split sticks, "not a match" binds every
member of both golden records, one open candidate per pair of golden records, and a
candidate closes in the transaction that merges its golden records."""

import pytest
from django.db import transaction

from matching.decisions import decide
from matching.models import CandidateStatus, MatchCandidate, MatchDecision, Verdict
from matching.services import match_records, run_batch_matching
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.selectors import resolve_golden
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge, split

pytestmark = pytest.mark.django_db

REVIEW_ONLY = {"customer": {"auto_link": 1.01, "review": 0.5}}


def record(system: str, key: str) -> SourceRecord:
    return SourceRecord.objects.select_related("golden").get(
        source_system__code=system, source_key=key
    )


def golden_of(system: str, key: str) -> str:
    return record(system, key).golden_id


def open_candidates() -> list[MatchCandidate]:
    return list(
        MatchCandidate.objects.filter(status=CandidateStatus.OPEN).select_related("left", "right")
    )


def between(first: str, second: str) -> list[MatchCandidate]:
    """Open candidates whose records are now in these two golden records."""
    wanted = {first, second}
    return [
        c
        for c in open_candidates()
        if {record_golden(c.left_id), record_golden(c.right_id)} == wanted
    ]


def record_golden(pk: int) -> str:
    return SourceRecord.objects.get(pk=pk).golden_id


def merge_records(*keys: tuple[str, str]) -> str:
    """A steward merge of the golden records of these records into the first one's."""
    survivor = GoldenRecord.objects.get(pk=golden_of(*keys[0]))
    for key in keys[1:]:
        loser = GoldenRecord.objects.get(pk=golden_of(*key))
        merge(survivor=survivor, loser=loser, actor="steward", reason="same person")
    return survivor.pk


@pytest.fixture
def matched(customer_model):
    return run_batch_matching(entity_type="customer", actor="test")


@pytest.fixture
def ingest(django_capture_on_commit_callbacks):
    """Ingest rows and run what their commit triggers (the signal → the eager task)."""

    def ingest_rows(system: str, *rows: dict):
        with django_capture_on_commit_callbacks(execute=True):
            ingest_records(
                entity_type="customer",
                system_code=system,
                rows=list(enumerate(rows, start=1)),
                actor="test",
                create_system=True,
            )

    return ingest_rows


def _erp_row(febrl_sample, key: str) -> dict:
    return next(dict(r) for r in febrl_sample["erp"] if r["source_key"] == key)


# ------------------------------------------------------------------------------- splits


def test_a_split_survives_two_batch_runs_and_an_incremental_reingest(matched, febrl_sample, ingest):
    original, duplicate = record("crm", "rec-3-org"), record("erp", "rec-3-dup-0")
    assert original.golden_id == duplicate.golden_id  # arrange: matching linked them

    split(golden=original.golden, records=[duplicate], actor="steward", reason="not the same")
    run_batch_matching(entity_type="customer", actor="test")
    run_batch_matching(entity_type="customer", actor="test")
    ingest("erp", _erp_row(febrl_sample, "rec-3-dup-0") | {"note": "sent again"})

    assert golden_of("crm", "rec-3-org") != golden_of("erp", "rec-3-dup-0")
    assert golden_of("crm", "rec-10-org") == golden_of("erp", "rec-10-dup-0")  # still matching


def test_a_split_whose_records_changed_goes_back_to_review_but_stays_apart(
    matched, febrl_sample, ingest
):
    original, duplicate = record("crm", "rec-3-org"), record("erp", "rec-3-dup-0")
    split(golden=original.golden, records=[duplicate], actor="steward", reason="not the same")

    ingest("erp", _erp_row(febrl_sample, "rec-3-dup-0") | {"phone": "+61 2 9999 0000"})
    run_batch_matching(entity_type="customer", actor="test")

    kept, moved = golden_of("crm", "rec-3-org"), golden_of("erp", "rec-3-dup-0")
    assert kept != moved
    assert len(between(kept, moved)) == 1  # the evidence changed: a steward looks again


def test_a_steward_merge_after_a_split_is_kept_by_matching(matched):
    original, duplicate = record("crm", "rec-3-org"), record("erp", "rec-3-dup-0")
    created = split(golden=original.golden, records=[duplicate], actor="steward", reason="x")

    merge(survivor=original.golden, loser=created, actor="steward", reason="same after all")
    run_batch_matching(entity_type="customer", actor="test")

    assert golden_of("crm", "rec-3-org") == golden_of("erp", "rec-3-dup-0")
    assert not MatchDecision.objects.filter(is_current=True, verdict=Verdict.NOT_A_MATCH).exists()


def test_after_a_split_merged_away_ids_redirect_to_the_golden_record_holding_their_records(
    load_febrl,
):
    load_febrl()
    kept_id, moved_id = golden_of("crm", "rec-3-org"), golden_of("erp", "rec-3-dup-0")
    survivor = merge_records(("crm", "rec-3-org"), ("erp", "rec-3-dup-0"))
    assert resolve_golden(moved_id)[0].pk == survivor == kept_id

    created = split(
        golden=GoldenRecord.objects.get(pk=survivor),
        records=[record("erp", "rec-3-dup-0")],
        actor="steward",
        reason="two people",
    )

    assert resolve_golden(moved_id)[0].pk == created.pk
    assert resolve_golden(kept_id)[0].pk == kept_id


# ------------------------------------------------------------------- "not a match" binds all


def test_not_a_match_keeps_every_member_apart_also_when_the_decided_record_is_gone(
    customer_model, settings
):
    # rec-12 has six records: two golden records of three each, a steward says "not a match".
    left = merge_records(("crm", "rec-12-org"), ("erp", "rec-12-dup-0"), ("erp", "rec-12-dup-1"))
    right = merge_records(("erp", "rec-12-dup-2"), ("erp", "rec-12-dup-3"), ("erp", "rec-12-dup-4"))
    thresholds, settings.KEYSTONE_MATCH_THRESHOLDS = settings.KEYSTONE_MATCH_THRESHOLDS, REVIEW_ONLY
    run_batch_matching(entity_type="customer", actor="test")
    candidate = between(left, right)[0]
    decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor="steward", reason="twins")
    named = next(
        r
        for r in SourceRecord.objects.filter(pk__in=[candidate.left_id, candidate.right_id])
        if r.golden_id == left
    )
    ingest_records(  # the source deletes the record the decided pair names
        entity_type="customer",
        system_code=named.source_system.code,
        rows=[(1, {"source_key": named.source_key, "deleted": True})],
        actor="test",
    )
    settings.KEYSTONE_MATCH_THRESHOLDS = thresholds

    run_batch_matching(entity_type="customer", actor="test")

    remaining = SourceRecord.objects.filter(golden_id=left, deleted=False)
    assert remaining.count() == 2
    assert all(r.golden_id != golden_of("erp", "rec-12-dup-2") for r in remaining)


def test_not_a_match_closes_every_record_pair_between_the_two_golden_records(
    customer_model, settings
):
    left = merge_records(("crm", "rec-12-org"), ("erp", "rec-12-dup-0"))
    right = merge_records(("erp", "rec-12-dup-2"), ("erp", "rec-12-dup-3"))
    settings.KEYSTONE_MATCH_THRESHOLDS = REVIEW_ONLY
    run_batch_matching(entity_type="customer", actor="test")

    decide(
        candidate=between(left, right)[0],
        verdict=Verdict.NOT_A_MATCH,
        actor="steward",
        reason="twins",
    )
    after_decision = between(left, right)
    run_batch_matching(entity_type="customer", actor="test")

    assert after_decision == []
    assert between(left, right) == []


# ------------------------------------------------------------ candidates per golden pair


def test_one_open_candidate_per_pair_of_golden_records(customer_model, settings):
    left = merge_records(("crm", "rec-12-org"), ("erp", "rec-12-dup-0"), ("erp", "rec-12-dup-1"))
    right = merge_records(("erp", "rec-12-dup-2"), ("erp", "rec-12-dup-3"), ("erp", "rec-12-dup-4"))
    settings.KEYSTONE_MATCH_THRESHOLDS = REVIEW_ONLY

    run_batch_matching(entity_type="customer", actor="test")

    pairs = [
        frozenset((record_golden(c.left_id), record_golden(c.right_id))) for c in open_candidates()
    ]
    assert len(pairs) == len(set(pairs)) > 0
    (candidate,) = between(left, right)
    assert len(candidate.pairs) >= 2  # the other scored member pairs are listed
    assert all(p["probability"] <= candidate.probability for p in candidate.pairs)


def test_a_merged_pairs_candidate_closes_in_the_merge_transaction(customer_model, settings):
    settings.KEYSTONE_MATCH_THRESHOLDS = REVIEW_ONLY
    run_batch_matching(entity_type="customer", actor="test")
    first, second = golden_of("crm", "rec-5-org"), golden_of("erp", "rec-5-dup-0")
    (candidate,) = between(first, second)

    with transaction.atomic():
        merge(
            survivor=GoldenRecord.objects.get(pk=first),
            loser=GoldenRecord.objects.get(pk=second),
            actor="steward",
            reason="same person",
        )
        inside = MatchCandidate.objects.get(pk=candidate.pk).status

    assert inside != CandidateStatus.OPEN
    assert between(first, first) == []


def test_a_candidate_of_a_merged_away_golden_record_moves_to_its_survivor(customer_model, settings):
    settings.KEYSTONE_MATCH_THRESHOLDS = REVIEW_ONLY
    run_batch_matching(entity_type="customer", actor="test")
    org, dup = golden_of("crm", "rec-12-org"), golden_of("erp", "rec-12-dup-0")
    others = {c.pk for c in open_candidates() if org in {c.left_golden_id, c.right_golden_id}}
    assert others

    merge(
        survivor=GoldenRecord.objects.get(pk=dup),
        loser=GoldenRecord.objects.get(pk=org),
        actor="steward",
        reason="same person",
    )

    assert GoldenRecord.objects.get(pk=org).status == GoldenStatus.MERGED
    named = [
        c
        for c in MatchCandidate.objects.filter(status=CandidateStatus.OPEN)
        if org in (c.left_golden_id, c.right_golden_id)
    ]
    assert named == []
    pairs = [
        frozenset((c.left_golden_id, c.right_golden_id))
        for c in MatchCandidate.objects.filter(status=CandidateStatus.OPEN)
    ]
    assert len(pairs) == len(set(pairs))


def test_incremental_matching_stores_one_candidate_per_golden_pair(matched, febrl_sample, ingest):
    base = next(dict(r) for r in febrl_sample["crm"] if r["source_key"] == "rec-10-org")
    names = {k: base[k] for k in ("kind", "given_name", "family_name", "country")}

    ingest("billing", names | {"source_key": "b-1", "date_of_birth": "19650812"})
    ingest("billing", names | {"source_key": "b-2", "date_of_birth": "19650812"})

    doubtful = golden_of("billing", "b-1")
    assert golden_of("billing", "b-2") == doubtful  # the two twins link to each other
    candidates = between(golden_of("crm", "rec-10-org"), doubtful)
    assert len(candidates) == 1
    assert {record("billing", "b-1").pk, record("billing", "b-2").pk} <= candidate_records(
        candidates[0]
    )


def candidate_records(candidate: MatchCandidate) -> frozenset[int]:
    return frozenset(
        [candidate.left_id, candidate.right_id]
        + [n for p in candidate.pairs for n in (p["left"], p["right"])]
    )


def test_deciding_a_candidate_records_the_members_of_both_golden_records(customer_model, settings):
    left = merge_records(("crm", "rec-12-org"), ("erp", "rec-12-dup-0"))
    right = merge_records(("erp", "rec-12-dup-2"), ("erp", "rec-12-dup-3"))
    settings.KEYSTONE_MATCH_THRESHOLDS = REVIEW_ONLY
    run_batch_matching(entity_type="customer", actor="test")

    decision = decide(
        candidate=between(left, right)[0], verdict=Verdict.NOT_A_MATCH, actor="steward"
    )

    sides = {
        side: {r for r, s in decision.records.values_list("record_id", "side") if s == side}
        for side in ("left", "right")
    }
    members = {
        golden: set(SourceRecord.objects.filter(golden_id=golden).values_list("pk", flat=True))
        for golden in (left, right)
    }
    assert sorted(sides.values(), key=min) == sorted(members.values(), key=min)
    assert MatchDecision.objects.get().is_current


def test_match_records_twice_keeps_one_candidate(matched, febrl_sample, ingest):
    base = next(dict(r) for r in febrl_sample["crm"] if r["source_key"] == "rec-10-org")
    row = {k: base[k] for k in ("kind", "given_name", "family_name", "country")}
    ingest("billing", row | {"source_key": "b-1", "date_of_birth": "19650812"})
    ids = [record("billing", "b-1").pk]

    match_records(entity_type="customer", record_ids=ids, actor="test")

    assert len(between(golden_of("crm", "rec-10-org"), golden_of("billing", "b-1"))) == 1
