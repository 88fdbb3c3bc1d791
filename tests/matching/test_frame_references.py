"""Reference columns of the matching frame: the golden ID a record's reference resolves to."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from matching.frame import RECORD_FIELDS, build_frame
from matching.models import MatchModel
from matching.scoring import scoring_frame
from matching.specs import get_spec
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge_many

pytestmark = pytest.mark.django_db


def _ingest(entity_type: str, system: str, *rows: dict) -> None:
    ingest_records(
        entity_type=entity_type,
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
    )


def _golden(entity_type: str, system: str, key: str) -> str:
    return SourceRecord.objects.get(
        entity_type=entity_type, source_system__code=system, source_key=key
    ).golden_id


def _column(frame, name: str) -> dict[str, str | None]:
    keys = dict(SourceRecord.objects.values_list("pk", "source_key"))
    record_keys = [keys[pk] for pk in frame["unique_id"].to_pylist()]
    return dict(zip(record_keys, frame[name].to_pylist(), strict=True))


def _contracts(system: str, count: int, customer_key: str = "c1") -> None:
    _ingest(
        "contract",
        system,
        *(
            {"source_key": f"k{n}", "contract_number": f"C-{n}", "customer_key": customer_key}
            for n in range(count)
        ),
    )


@pytest.fixture
def customers():
    _ingest(
        "customer",
        "crm",
        {"source_key": "c1", "kind": "organization", "name": "Acme"},
        {"source_key": "c2", "kind": "organization", "name": "Acme Ltd"},
        {"source_key": "c3", "kind": "organization", "name": "Zyfra"},
    )


def test_contract_frame_carries_its_customers_golden_id(customers):
    _ingest(
        "contract",
        "crm",
        {"source_key": "k1", "contract_number": "C-1", "customer_key": "c1"},
        {"source_key": "k3", "contract_number": "C-3", "customer_key": "c3"},
    )

    frame = build_frame(get_spec("contract"))

    assert _column(frame, "customer") == {
        "k1": _golden("customer", "crm", "c1"),
        "k3": _golden("customer", "crm", "c3"),
    }


def test_reference_resolves_in_the_referring_records_own_system(customers):
    _ingest("contract", "erp", {"source_key": "k1", "contract_number": "C-1", "customer_key": "c1"})

    frame = build_frame(get_spec("contract"))

    assert _column(frame, "customer") == {"k1": None}


def test_unknown_or_missing_reference_is_null(customers):
    _ingest(
        "contract",
        "crm",
        {"source_key": "k1", "contract_number": "C-1", "customer_key": "nobody"},
        {"source_key": "k2", "contract_number": "C-2"},
    )

    frame = build_frame(get_spec("contract"))

    assert _column(frame, "customer") == {"k1": None, "k2": None}


def test_reference_to_a_merged_customer_resolves_to_the_survivor(customers):
    survivor, loser = _golden("customer", "crm", "c1"), _golden("customer", "crm", "c2")
    merge_many(merges=[(survivor, loser, 0.99)], actor="test", reason="test")
    _contracts("crm", 1, customer_key="c2")

    frame = build_frame(get_spec("contract"))

    assert _column(frame, "customer") == {"k0": survivor}


def test_merge_chain_is_followed_to_the_active_golden_record(customers):
    first, middle, last = (_golden("customer", "crm", key) for key in ("c1", "c2", "c3"))
    _contracts("crm", 1, customer_key="c3")
    # An unflattened chain, last -> middle -> first, the record left on the first loser.
    GoldenRecord.objects.filter(pk=middle).update(status=GoldenStatus.MERGED, merged_into=first)
    GoldenRecord.objects.filter(pk=last).update(status=GoldenStatus.MERGED, merged_into=middle)

    frame = build_frame(get_spec("contract"))

    assert _column(frame, "customer") == {"k0": first}


def test_reference_to_a_retired_golden_record_is_null(customers):
    GoldenRecord.objects.filter(pk=_golden("customer", "crm", "c1")).update(
        status=GoldenStatus.RETIRED
    )
    _contracts("crm", 1)

    frame = build_frame(get_spec("contract"))

    assert _column(frame, "customer") == {"k0": None}


def test_entitlement_frame_resolves_contract_product_and_customer(customers):
    _ingest("product", "crm", {"source_key": "p1", "sku": "SKU-1", "name": "Seat"})
    _contracts("crm", 1)
    _ingest(
        "entitlement",
        "crm",
        {
            "source_key": "e1",
            "contract_key": "k0",
            "product_key": "p1",
            "customer_key": "c1",
            "quantity": "5",
        },
    )

    row = build_frame(get_spec("entitlement")).to_pylist()[0]

    assert (row["contract"], row["product"], row["customer"]) == (
        _golden("contract", "crm", "k0"),
        _golden("product", "crm", "p1"),
        _golden("customer", "crm", "c1"),
    )


def _frame_queries(count: int) -> int:
    SourceRecord.objects.filter(entity_type="contract").delete()
    _contracts("crm", count)
    _contracts("erp", count)
    with CaptureQueriesContext(connection) as queries:
        build_frame(get_spec("contract"))
    return len(queries)


def test_frame_queries_do_not_grow_with_the_number_of_records(customers):
    survivor, loser = _golden("customer", "crm", "c1"), _golden("customer", "crm", "c2")
    merge_many(merges=[(survivor, loser, 0.99)], actor="test", reason="test")

    assert _frame_queries(3) == _frame_queries(60) <= 3


def test_scoring_frame_resolves_references_as_the_batch_frame_does(customers):
    survivor, loser = _golden("customer", "crm", "c1"), _golden("customer", "crm", "c2")
    merge_many(merges=[(survivor, loser, 0.99)], actor="test", reason="test")
    _contracts("crm", 2, customer_key="c2")
    spec = get_spec("contract")
    model = MatchModel(entity_type="contract", version=1, settings={"comparisons": []})
    records = sorted(
        SourceRecord.objects.filter(entity_type="contract").values_list(*RECORD_FIELDS)
    )

    incremental = scoring_frame(spec, model, records)

    assert incremental.select(build_frame(spec).column_names) == build_frame(spec)
    assert set(incremental["customer"].to_pylist()) == {survivor}
