"""A group's companies at one office: same address, switchboard, web domain and mailbox domain,
names alike but for the word that says which company it is. Where one of them carries no tax
ID the identifier constraint cannot keep them apart; the name must: such a pair is never
auto-linked (a steward's review at most), while a copy of one company in another system (the
same name, another legal-form spelling) still links.

The model is trained on a small demo set (organizations with web domains, offices and
switchboards), so the office's evidence weighs what it weighs in such data."""

from __future__ import annotations

import pytest

from matching.scoring import explain_pair
from matching.services import run_batch_matching
from mdm.models import SourceRecord
from tests.matching.conftest import ingest_customers

pytestmark = pytest.mark.django_db

OFFICE = {
    "kind": "organization",
    "phone": "+31 50 487 2005",
    "address_line1": "Dexhof 12",
    "postal_code": "7563 EB",
    "city": "Munstergeleen",
    "country": "NL",
}


def golden_of(system: str, key: str) -> str:
    return SourceRecord.objects.get(source_system__code=system, source_key=key).golden_id


@pytest.fixture
def group_office(demo_customer_model):
    ingest_customers(
        "crm",
        OFFICE
        | {
            "source_key": "materials",
            "name": "Starridge Materials BV",
            "tax_id": "NL590541648B01",
            "email": "contact.materials@starridge.com",
        },
        OFFICE | {"source_key": "foods", "name": "Starridge Foods BV", "email": "ap@starridge.com"},
    )
    ingest_customers(
        "erp",
        OFFICE
        | {
            "source_key": "foods",
            "name": "Starridge Foods B.V.",
            "email": "invoices@starridge.com",
        },
    )
    run_batch_matching(entity_type="customer", actor="test")


def test_a_sibling_behind_the_group_switchboard_without_a_tax_id_is_never_auto_linked(
    group_office,
):
    materials = SourceRecord.objects.get(source_system__code="crm", source_key="materials")
    foods = SourceRecord.objects.get(source_system__code="crm", source_key="foods")

    explained = explain_pair(left_record_id=materials.pk, right_record_id=foods.pk)

    assert materials.golden_id != foods.golden_id
    assert explained.attributes["name_key"]["level"] == "same brand, another word in each name"
    # the office, the switchboard and the mailbox domain together weigh about +35 bits in
    # demo-sized data: the name takes the pair below the auto-link threshold (into review
    # there: p 0.85 on the 1,500-customer demo set; below it on this small one)
    assert explained.attributes["name_key"]["match_weight"] <= -19


def test_the_same_company_in_another_system_still_links(group_office):
    assert golden_of("crm", "foods") == golden_of("erp", "foods")
