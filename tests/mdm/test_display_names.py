"""Display names declared per entity: entitlements named after their product, customer and
term; contracts after their number and customer; renaming a record renames those named
after it."""

import pytest

from mdm.entities import ENTITIES, NAMED_AFTER
from mdm.models import GoldenRecord, SourceRecord
from mdm.services.ingest import ingest_records

pytestmark = pytest.mark.django_db


def load(entity_type: str, rows: list[dict], system: str = "billing") -> None:
    ingest_records(
        entity_type=entity_type,
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
    )


def golden_of(source_key: str) -> GoldenRecord:
    return SourceRecord.objects.select_related("golden").get(source_key=source_key).golden


@pytest.fixture
def deal():
    load("customer", [{"source_key": "cus-1", "name": "Acme Corporation"}])
    load("product", [{"source_key": "prd-1", "sku": "KS-START", "name": "Keystone Starter"}])
    load(
        "contract",
        [{"source_key": "ctr-1", "contract_number": "C-2024-001", "customer_key": "cus-1"}],
    )
    load(
        "entitlement",
        [
            {
                "source_key": "ent-1",
                "status": "active",
                "quantity": "25",
                "start_date": "2024-01-01",
                "end_date": "2024-12-31",
                "contract_key": "ctr-1",
                "product_key": "prd-1",
                "customer_key": "cus-1",
            }
        ],
    )


def test_an_entitlement_is_named_after_its_product_customer_and_term(deal):
    assert golden_of("ent-1").display_name == (
        "Keystone Starter · Acme Corporation · 2024-01-01 – 2024-12-31"
    )
    assert golden_of("ctr-1").display_name == "C-2024-001 · Acme Corporation"


def test_renaming_a_customer_renames_what_is_named_after_it(deal):
    load("customer", [{"source_key": "cus-1", "name": "Acme Holding"}])

    assert golden_of("ent-1").display_name.startswith("Keystone Starter · Acme Holding · ")
    assert golden_of("ctr-1").display_name == "C-2024-001 · Acme Holding"


def test_parts_without_a_value_are_left_out():
    entitlement = ENTITIES["entitlement"]

    assert entitlement.display_name({"start_date": "2024-01-01"}, {}) == "2024-01-01"
    assert entitlement.display_name({}, {"customer": "Acme"}) == "Acme"
    assert NAMED_AFTER["product"] == ("entitlement",)
    assert set(NAMED_AFTER["customer"]) == {"contract", "entitlement"}


def test_a_person_without_a_full_name_is_named_by_given_and_family_name():
    customer = ENTITIES["customer"]

    assert customer.display_name({"given_name": "Zoe", "family_name": "Burgess"}) == "Zoe Burgess"
    assert customer.display_name({"name": "Zoe Burgess", "given_name": "Zoe"}) == "Zoe Burgess"
