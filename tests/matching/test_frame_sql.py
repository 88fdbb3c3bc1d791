"""The batch frame read with PostgreSQL extracting the columns is value for value the frame
built from decoded documents (the path incremental matching, the probe and explanations use)."""

import pytest

from matching.frame import RECORD_FIELDS, build_frame, frame_from_records, live_frame
from matching.specs import get_spec
from mdm.models import SourceRecord
from tests.factories import SourceSystemFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres(
        reason="the SQL frame is PostgreSQL's; elsewhere build_frame decodes the documents"
    ),
]

ODD_VALUES = [
    ({"name_key": "acme", "country": "DE"}, {"kind": "organization"}),
    ({"name_key": "  padded  ", "city_key": ""}, {"kind": " "}),  # stripped; empty is null
    ({"name_key": "\u00a0nbsp\u2003", "phone_key": None}, {}),  # Unicode spaces, JSON null
    ({"postal_code_key": 1050, "tax_id_key": 1.50}, {"date_of_birth": True}),  # not strings
    ({"domain": {"nested": [1, "x"]}, "email_key": ["a", "b"]}, {"kind": False}),
    ({"name_key": 'O\'Brien "quoted" \\ back', "email_domain": "ü.example"}, {}),
    ({}, {}),  # nothing at all
    ({"name_key": 12345678901234567890123}, {"kind": 2.5e-7}),
]


def _records(entity_type: str = "customer") -> None:
    system = SourceSystemFactory(code="crm")
    for n, (match_keys, attributes) in enumerate(ODD_VALUES):
        SourceRecord.objects.create(
            entity_type=entity_type,
            source_system=system,
            source_key=f"r{n}",
            match_keys=match_keys,
            attributes=attributes,
            payload_hash=str(n),
        )
    SourceRecord.objects.create(  # deleted records are not in the frame
        entity_type=entity_type,
        source_system=system,
        source_key="gone",
        match_keys={"name_key": "gone"},
        payload_hash="x",
        deleted=True,
    )


def test_sql_frame_equals_the_frame_of_decoded_documents():
    _records()
    spec = get_spec("customer")
    decoded = frame_from_records(
        spec,
        SourceRecord.objects.filter(deleted=False).order_by("pk").values_list(*RECORD_FIELDS),
    )

    frame = build_frame(spec)

    assert frame.num_rows == len(ODD_VALUES)
    assert frame.to_pydict() == decoded.to_pydict()
    assert frame.schema == decoded.schema
    by_id = dict(zip(frame["unique_id"].to_pylist(), frame.to_pylist(), strict=True))
    odd = by_id[SourceRecord.objects.get(source_key="r3").pk]
    assert (odd["postal_code_key"], odd["tax_id_key"], odd["date_of_birth"]) == (
        "1050",
        "1.5",
        "True",
    )


def test_sql_frame_is_read_in_pages(monkeypatch):
    from matching import frame as frame_module

    _records()
    spec = get_spec("customer")
    whole = build_frame(spec)
    monkeypatch.setattr(frame_module, "PAGE", 3)

    paged = build_frame(spec)

    assert paged.equals(whole)
    assert paged["unique_id"].to_pylist() == sorted(
        SourceRecord.objects.filter(deleted=False).values_list("pk", flat=True)
    )


def test_live_frame_of_some_records_equals_their_decoded_frame_with_golden_ids():
    _records()
    spec = get_spec("customer")
    wanted = list(
        SourceRecord.objects.filter(source_key__in=["r1", "r3", "r4", "gone"]).values_list(
            "pk", flat=True
        )
    )
    live = SourceRecord.objects.filter(pk__in=wanted, deleted=False).order_by("pk")

    frame, golden_of = live_frame(spec, reversed(wanted))

    assert (
        frame.to_pydict() == frame_from_records(spec, live.values_list(*RECORD_FIELDS)).to_pydict()
    )
    assert golden_of == dict(live.values_list("pk", "golden_id"))
