"""Generic values are no evidence: a phone, e-mail, website or street address that many
differently named records share neither blocks nor scores, in batch, incremental, probe and
explanation alike, and the explanation says so."""

import pytest

from matching.frame import frame_from_rows
from matching.generic import detect, mask
from matching.models import GenericValue, MatchKey
from matching.probe import probe_matches
from matching.scoring import explain_pair
from matching.services import run_batch_matching
from matching.specs import CUSTOMER_SPEC
from mdm.entities import get_entity
from mdm.models import SourceRecord
from mdm.normalize import normalize_record
from mdm.services.ingest import ingest_records

pytestmark = pytest.mark.django_db

SWITCHBOARD = "+61 2 9999 0000"
E164 = "+61299990000"
COMPANIES = ("Acacia Freight", "Birchwood Dental", "Cobalt Media", "Dunmore Labs", "Elkhorn Foods")
HOUSEHOLD = ("Ann Lee", "Bob Lee", "Cat Lee", "Dan Lee")


def _org(key: str, name: str, city: str, **extra) -> dict:
    return {
        "source_key": key,
        "kind": "organization",
        "name": name,
        "city": city,
        "country": "AU",
        "phone": SWITCHBOARD,
    } | extra


def _frame(rows):
    customer = get_entity("customer")
    normalized = [normalize_record(customer, row) for row in rows]
    return frame_from_rows(
        CUSTOMER_SPEC, [(pk, n.keys, n.values) for pk, n in enumerate(normalized, start=1)]
    )


def test_a_phone_five_differently_named_customers_share_is_generic_a_household_is_not():
    companies = [_org(f"c{i}", name, f"Town {i}") for i, name in enumerate(COMPANIES)]
    household = [
        _org(f"h{i}", name, "Perth", phone="+61 8 9000 1234") for i, name in enumerate(HOUSEHOLD)
    ]

    found = detect(CUSTOMER_SPEC, _frame(companies + household))

    assert found["phone_key"] == {E164: 5}


def test_a_generic_value_is_nulled_and_kept_for_the_explanation():
    frame = _frame([_org(f"c{i}", name, "Town") for i, name in enumerate(COMPANIES)])

    masked = mask(CUSTOMER_SPEC, frame, detect(CUSTOMER_SPEC, frame))

    assert set(masked["phone_key"].to_pylist()) == {None}
    assert set(masked["generic_phone_key"].to_pylist()) == {f"5\t{E164}"}


@pytest.fixture
def switchboard(customer_model):
    rows = [_org(f"sb-{i}", name, f"Town {i}") for i, name in enumerate(COMPANIES)]
    ingest_records(
        entity_type="customer",
        system_code="support",
        rows=list(enumerate(rows, 1)),
        actor="test",
        create_system=True,
    )
    run_batch_matching(entity_type="customer", actor="test")
    return {r.source_key: r for r in SourceRecord.objects.filter(source_key__startswith="sb-")}


def test_batch_run_stores_the_generic_phone_and_keys_no_block_on_it(switchboard):
    assert GenericValue.objects.filter(column="phone_key", value=E164, things=5).exists()
    assert not MatchKey.objects.filter(name="phone_key", value=E164).exists()
    assert len({r.golden_id for r in switchboard.values()}) == 5


def test_the_explanation_says_the_shared_phone_was_not_counted(switchboard):
    explained = explain_pair(
        left_record_id=switchboard["sb-0"].pk, right_record_id=switchboard["sb-1"].pk
    )

    phone = explained.attributes["phone_key"]
    assert (
        phone["level"]
        == "shared phone number is used by 5 differently named customers — not counted"
    )
    assert (phone["match_weight"], phone["left"], phone["right"]) == (0.0, E164, E164)


def test_the_probe_finds_nothing_through_a_generic_phone(switchboard):
    found = probe_matches(
        entity_type="customer",
        attributes={
            "kind": "organization",
            "name": "Fernhill Motors",
            "phone": SWITCHBOARD,
            "country": "AU",
        },
    )

    assert {m.golden_id for m in found} & {r.golden_id for r in switchboard.values()} == set()


def test_incremental_matching_keys_a_changed_record_without_its_generic_phone(
    switchboard, django_capture_on_commit_callbacks
):
    row = _org("sb-new", "Fernhill Motors", "Town 9")
    with django_capture_on_commit_callbacks(execute=True):
        ingest_records(entity_type="customer", system_code="support", rows=[(1, row)], actor="test")

    record = SourceRecord.objects.get(source_key="sb-new")
    assert MatchKey.objects.filter(record_id=record.pk).exists()
    assert not MatchKey.objects.filter(record_id=record.pk, name="phone_key").exists()
