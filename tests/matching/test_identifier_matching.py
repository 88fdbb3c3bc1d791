"""Hard identifiers in batch and incremental matching: records with different valid tax IDs
never share a golden record, not even through records without one; the link that would join
them goes to review as "conflicting tax IDs"; equal ones still link."""

from __future__ import annotations

import pytest

from matching.clustering import ScoredPair, cluster
from matching.models import CandidateStatus, MatchCandidate
from matching.services import run_batch_matching
from mdm import identifiers
from mdm.models import SourceRecord
from mdm.selectors import conflicting_identifier_goldens
from tests.matching.conftest import ingest_customers

pytestmark = pytest.mark.django_db

# Two valid Australian business numbers (mod 89); FEBRL's own 7-digit soc_sec_ids are no
# valid AU tax ID, so only these two are hard identifiers in the sample.
ABN_A, ABN_B = "51 824 753 556", "53 004 085 616"


def golden_of(system: str, key: str) -> str:
    return SourceRecord.objects.get(source_system__code=system, source_key=key).golden_id


def _row(febrl_sample, system: str, key: str, **changes) -> dict:
    return next(dict(r) for r in febrl_sample[system] if r["source_key"] == key) | changes


@pytest.fixture
def links_from_095(settings):
    """The auto-link band these cases are built on (a FEBRL duplicate that carries a tax ID
    its original lacks scores 0.95-0.99): the constraint is the point here, not the band."""
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 0.95, "review": 0.5}}


def _conflict_candidates() -> list[MatchCandidate]:
    return [
        c
        for c in MatchCandidate.objects.filter(status=CandidateStatus.OPEN)
        if "conflicting tax IDs" in (c.reason or "")
    ]


def test_batch_matching_keeps_conflicting_tax_ids_apart_even_through_records_without_one(
    customer_model, febrl_sample, links_from_095
):
    # rec-12: six records of one person; two of them now carry different valid tax IDs.
    ingest_customers(
        "erp",
        _row(febrl_sample, "erp", "rec-12-dup-0", tax_id=ABN_A),
        _row(febrl_sample, "erp", "rec-12-dup-1", tax_id=ABN_B),
    )

    run_batch_matching(entity_type="customer", actor="test")

    assert golden_of("erp", "rec-12-dup-0") != golden_of("erp", "rec-12-dup-1")
    # the records without a tax ID still link to one side, and other people still match
    assert golden_of("crm", "rec-12-org") in {
        golden_of("erp", "rec-12-dup-0"),
        golden_of("erp", "rec-12-dup-1"),
    }
    assert golden_of("crm", "rec-10-org") == golden_of("erp", "rec-10-dup-0")
    assert conflicting_identifier_goldens("customer") == []
    assert _conflict_candidates()  # the cut link is for a steward to see, with its reason

    run_batch_matching(entity_type="customer", actor="test")  # and stays so
    assert golden_of("erp", "rec-12-dup-0") != golden_of("erp", "rec-12-dup-1")


def test_incremental_matching_keeps_a_new_record_with_another_tax_id_out(
    customer_model, febrl_sample, django_capture_on_commit_callbacks, links_from_095
):
    ingest_customers("erp", _row(febrl_sample, "erp", "rec-12-dup-0", tax_id=ABN_A))
    run_batch_matching(entity_type="customer", actor="test")
    holder = golden_of("erp", "rec-12-dup-0")
    assert golden_of("crm", "rec-12-org") == holder  # arrange: the person is one record

    # A billing system sends the same person with another valid tax ID, and one without any.
    with django_capture_on_commit_callbacks(execute=True):
        ingest_customers(
            "billing",
            _row(febrl_sample, "erp", "rec-12-dup-1", source_key="b-1", tax_id=ABN_B),
            _row(febrl_sample, "erp", "rec-12-dup-2", source_key="b-2", tax_id=""),
        )

    assert golden_of("billing", "b-1") != holder
    assert golden_of("billing", "b-2") in {holder, golden_of("billing", "b-1")}
    assert conflicting_identifier_goldens("customer") == []
    assert _conflict_candidates()


def test_equal_tax_ids_in_another_spelling_still_link(customer_model, febrl_sample):
    ingest_customers(
        "erp",
        _row(febrl_sample, "erp", "rec-12-dup-0", tax_id=ABN_A),
        _row(febrl_sample, "erp", "rec-12-dup-1", tax_id="AU" + ABN_A.replace(" ", "")),
    )
    run_batch_matching(entity_type="customer", actor="test")
    assert golden_of("erp", "rec-12-dup-0") == golden_of("erp", "rec-12-dup-1")


def test_wilson_capital_ca_and_wilson_capital_gmbh_de_are_never_one_golden_record():
    """The demo's case: same brand, auto-linked at p = 1.000, different countries' tax IDs."""
    ltd = {"name": "Wilson Capital Ltd", "tax_id": "872143001RT0001", "country": "CA"}
    gmbh = {"name": "Wilson Capital GmbH & Co KG", "tax_id": "DE136695976", "country": "DE"}
    branch = {"name": "Wilson Capital", "country": "DE"}  # no tax ID: links to either
    found = {
        golden: identifiers.identifiers("customer", values)
        for golden, values in (("G1", ltd), ("G2", gmbh), ("G3", branch))
    }
    assert identifiers.conflicts("customer", found["G1"], found["G2"]) == ["tax_id"]
    held = {golden: {k: {v} for k, v in kinds.items()} for golden, kinds in found.items()}

    result = cluster(
        pairs=[ScoredPair(1, 2, 1.0), ScoredPair(2, 3, 1.0), ScoredPair(1, 3, 1.0)],
        membership={1: "G1", 2: "G2", 3: "G3"},
        created_at={"G1": 1, "G2": 2, "G3": 3},
        threshold=0.9,
        identifiers=held,
        conflict_reason=lambda kinds: identifiers.reason("customer", kinds),
    )

    assert result.cluster_of(1).golden_id != result.cluster_of(2).golden_id
    assert {p.reason for p in result.refused} == {"conflicting tax IDs"}


def test_golden_records_holding_conflicting_identifiers_are_listed_and_the_check_fails():
    from django.core.management import CommandError, call_command

    from mdm.models import GoldenRecord
    from mdm.selectors import ConflictingGolden
    from mdm.services.resolution import merge

    ingest_customers("crm", {"source_key": "a", "name": "Acme", "tax_id": "DE123456788"})
    ingest_customers("erp", {"source_key": "b", "name": "Acme", "tax_id": "de 811 200 006"})
    ingest_customers("web", {"source_key": "c", "name": "Acme", "tax_id": "DE123456788"})  # same
    ingest_customers("old", {"source_key": "d", "name": "Acme", "tax_id": "N/A"})  # no identifier
    first = GoldenRecord.objects.get(pk=golden_of("crm", "a"))
    assert conflicting_identifier_goldens("customer") == []
    call_command("check_identifiers")
    for system, key in (("erp", "b"), ("web", "c"), ("old", "d")):
        loser = GoldenRecord.objects.get(pk=golden_of(system, key))
        merge(survivor=first, loser=loser, actor="steward", reason="from before")

    assert conflicting_identifier_goldens("customer") == [
        ConflictingGolden(first.pk, {"tax_id": ("DE123456788", "DE811200006")})
    ]
    with pytest.raises(CommandError, match="1 golden records with conflicting identifiers"):
        call_command("check_identifiers", "--entity", "customer")
