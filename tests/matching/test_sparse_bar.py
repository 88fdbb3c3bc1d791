"""Two organizations that carry none of the attributes look-alikes differ by (tax ID, e-mail,
website, date of birth) auto-link at the spec's sparse bar (0.95) instead of 0.99 — in batch,
incremental and model activation alike, from one definition (`Thresholds.auto_link_bars`);
every other pair keeps the general bar."""

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from demo.sparse import sparse_organizations
from matching.activation import STORED_SCORES, stage_thresholds
from matching.clustering import ScoredPair, cluster
from matching.models import CandidateStatus, MatchCandidate
from matching.scoring import ScoredColumns, explain_pair
from matching.specs import CUSTOMER_SPEC, Thresholds
from mdm.models import SourceRecord
from tests.matching.conftest import ingest_customers

CUSTOMER = CUSTOMER_SPEC.thresholds
TELLING = ("tax_id_key", "email_key", "domain", "date_of_birth")


def _pairs(*pairs: tuple[dict, dict]) -> pd.DataFrame:
    columns = ("kind", *TELLING)
    return pd.DataFrame(
        [
            {
                f"{c}_{side}": record.get(c)
                for side, record in zip("lr", pair, strict=True)
                for c in columns
            }
            for pair in pairs
        ]
    )


ORG = {"kind": "organization"}


def test_two_organizations_without_telling_attributes_link_at_the_sparse_bar():
    scored = _pairs(
        (ORG, ORG),
        (ORG, {**ORG, "tax_id_key": "DE811"}),
        ({"kind": "person"}, {"kind": "person"}),
        ({}, {**ORG, "email_key": ""}),  # no kind is an organization; "" is no value
        ({**ORG, "date_of_birth": "1980-01-02"}, ORG),
    )

    bars = CUSTOMER.auto_link_bars(CUSTOMER_SPEC, scored)

    assert bars.tolist() == [0.95, 0.99, 0.99, 0.95, 0.99]


def test_scored_columns_read_a_masked_value_as_missing():
    missing = np.ma.masked_array(["", "x"], mask=[True, False], dtype=object)
    present_left = np.ma.masked_array(["w.com", "w.com"], mask=[True, True], dtype=object)
    columns = {f"{c}_{s}": missing.copy() for c in TELLING for s in "lr"}
    columns["domain_l"] = present_left
    columns["kind_l"] = columns["kind_r"] = np.array(["organization", "organization"], object)
    columns["match_probability"] = np.array([0.96, 0.96])

    bars = CUSTOMER.auto_link_bars(CUSTOMER_SPEC, ScoredColumns(columns))

    assert bars.tolist() == [0.95, 0.99]


def test_a_lower_general_bar_lowers_the_sparse_bar_too():
    assert Thresholds(auto_link=0.9, sparse_auto_link=0.95).sparse_bar == 0.9
    assert Thresholds(auto_link=0.99).sparse_bar == 0.99


def test_clustering_joins_a_pair_at_its_own_bar():
    membership = {1: "G1", 2: "G2", 3: "G3", 4: "G4"}

    result = cluster(
        pairs=[ScoredPair(1, 2, 0.96, bar=0.95), ScoredPair(3, 4, 0.96)],
        membership=membership,
        created_at={g: g for g in membership.values()},
        threshold=0.99,
    )

    assert [(m.survivor, m.loser) for m in result.merges] == [("G1", "G2")]


# ------------------------------------------------------------------ through the real paths

# One organization in two systems after a move: same name and phone, another street and
# city — on these sets such a pair scores 0.96-0.97 (docs/bench-log/2026-12-07-sparse.md).
MOVED_A = {
    "source_key": "A90001",
    "kind": "organization",
    "name": "Quillfeather Analytics Inc",
    "address_line1": "12 Elm Street",
    "city": "Springfield",
    "phone": "+1-415-555-0143",
}
MOVED_B = {
    "source_key": "B90001",
    "kind": "organization",
    "name": "QUILLFEATHER ANALYTICS INC",
    "address_line1": "900 Harbor Blvd",
    "city": "Port Alden",
    "phone": "+1 (415) 555-0143",
}


def _load(rows_by_system: dict[str, list[dict]]) -> None:
    for system, rows in rows_by_system.items():
        ingest_customers(system, *rows)


@pytest.fixture
def sparse_rows() -> dict[str, list[dict]]:
    return sparse_organizations(organizations=300, overlap=0.3, seed=11).rows


def _record(key: str) -> SourceRecord:
    return SourceRecord.objects.get(source_key=key)


@pytest.mark.django_db
def test_a_batch_run_links_a_moved_organization_known_by_name_and_phone(sparse_rows):
    _load({"a": [*sparse_rows["a"], MOVED_A], "b": [*sparse_rows["b"], MOVED_B]})

    call_command("run_matching", "customer", stdout=None)

    explained = explain_pair(
        left_record_id=_record("A90001").pk, right_record_id=_record("B90001").pk
    )
    assert explained.auto_link == CUSTOMER.sparse_bar <= explained.probability < 0.99
    assert _record("A90001").golden_id == _record("B90001").golden_id
    linked = SourceRecord.objects.filter(link_probability__lt=CUSTOMER.auto_link)
    assert linked.filter(link_probability__gte=CUSTOMER.sparse_bar).exists()
    assert not MatchCandidate.objects.filter(
        status=CandidateStatus.OPEN, probability__gte=CUSTOMER.sparse_bar
    ).exists()


@pytest.fixture
def held_to_the_general_bar(sparse_rows, settings):
    """The sparse set matched as before the sparse bar (0.99 for every pair): the moved
    organization's pair waits in review."""
    _load({"a": [*sparse_rows["a"], MOVED_A], "b": [*sparse_rows["b"], MOVED_B]})
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"sparse_auto_link": 0.99}}
    call_command("run_matching", "customer", stdout=None)
    assert _record("A90001").golden_id != _record("B90001").golden_id
    settings.KEYSTONE_MATCH_THRESHOLDS = {}


@pytest.mark.django_db
@pytest.mark.parametrize("review", [0.6, 0.5], ids=["stored scores", "rescored"])
def test_a_staged_version_with_the_sparse_bar_says_it_would_merge_the_pair(
    held_to_the_general_bar, review
):
    staged = stage_thresholds(
        entity_type="customer", auto_link=0.99, review=review, actor="test", reason="sparse bar"
    )

    merged = {
        g["id"]
        for example in staged.diff["merges"]["examples"]
        for g in (example["survivor"], *example["absorbed"])
    }
    assert (staged.diff["method"] == STORED_SCORES) == (review == 0.6)
    assert {_record("A90001").golden_id, _record("B90001").golden_id} <= merged


@pytest.mark.django_db
def test_a_changed_copy_links_incrementally_at_the_sparse_bar(
    held_to_the_general_bar, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _load({"b": [{**MOVED_B, "address_line1": "900 Harbor Boulevard"}]})

    copy = _record("B90001")
    assert copy.golden_id == _record("A90001").golden_id
    assert CUSTOMER.sparse_bar <= copy.link_probability < CUSTOMER.auto_link
