"""Source mappings in ingest: stored versions, the active one applied by ingest and
`load_source`, the payload kept as sent, an unmappable payload rejected with path and reason,
and a bad mapping refused at save time with nothing written."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from mdm.mappings import InvalidMapping
from mdm.models import IngestRejection, SourceMapping, SourceRecord
from mdm.selectors import active_mapping, mapping_versions
from mdm.services.ingest import ingest_records
from mdm.services.mappings import (
    activate_mapping_version,
    deactivate_mappings,
    save_mapping_version,
)
from mdm.services.rejections import replay_rejections

pytestmark = pytest.mark.django_db

CRM_ACCOUNT = {
    "fields": {
        "source_key": "Id",
        "name": "Name",
        "kind": {"path": "RecordType.Name", "map": {"Business Account": "organization",
                                                     "Person Account": "person"},
                 "unmapped": "reject"},
        "country": {"path": "BillingAddress.countryCode", "map": {"UK": "GB"}},
        "address_line1": {"path": "BillingAddress.street", "split": {"separator": "\n"}},
        "address_line2": {"path": "BillingAddress.street",
                          "split": {"separator": "\n", "index": 1}},
        "email": "Contacts[0].Email",
        "date_of_birth": {"path": "PersonBirthdate", "date": "%m/%d/%Y"},
        "source_updated_at": {"path": "LastModifiedDate", "datetime": "iso"},
    }
}  # fmt: skip


def account(key: str, **changes) -> dict:
    payload = {
        "attributes": {"type": "Account"},
        "Id": key,
        "Name": "Acme Ltd",
        "RecordType": {"Name": "Business Account"},
        "BillingAddress": {"street": "1 High St\nUnit 4", "countryCode": "UK"},
        "Contacts": [{"Email": "INFO@acme.co.uk"}],
        "LastModifiedDate": "2025-06-01T10:00:00.000+0000",
        "Industry": "Retail",
    }
    payload.update(changes)
    return payload


def ingest(rows, **options):
    return ingest_records(
        entity_type="customer",
        system_code="crm",
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
        collect_results=True,
        **options,
    )


def test_the_active_mapping_maps_what_ingest_normalizes_and_the_payload_is_kept_as_sent():
    save_mapping_version(system_code="crm", entity_type="customer", spec=CRM_ACCOUNT, actor="t")
    payload = account("001A")

    summary = ingest([payload])

    assert summary.counts["loaded"] == 1
    record = SourceRecord.objects.get(source_key="001A")
    assert record.raw == payload
    assert record.attributes["name"] == "Acme Ltd"
    assert record.attributes["kind"] == "organization"
    assert record.attributes["country"] == "GB"
    assert record.attributes["address_line1"] == "1 High St"
    assert record.attributes["address_line2"] == "Unit 4"
    assert record.attributes["email"] == "info@acme.co.uk"
    assert record.extra == {"attributes": {"type": "Account"}, "Industry": "Retail"}
    assert record.source_updated_at.isoformat() == "2025-06-01T10:00:00+00:00"


def test_a_change_the_mapping_does_not_read_still_updates_the_payload_kept():
    save_mapping_version(system_code="crm", entity_type="customer", spec=CRM_ACCOUNT, actor="t")
    ingest([account("001A")])

    summary = ingest([account("001A", Fax={"n": "1"}, LastModifiedDate="2025-07-01T00:00:00Z")])

    assert summary.counts["updated"] == 1
    assert SourceRecord.objects.get(source_key="001A").raw["Fax"] == {"n": "1"}


def test_an_unmappable_record_is_a_rejection_with_path_and_reason_and_the_rest_loads():
    save_mapping_version(system_code="crm", entity_type="customer", spec=CRM_ACCOUNT, actor="t")
    bad = account("001B", RecordType={"Name": "Partner Account"})

    summary = ingest([account("001A"), bad, account("001C", Contacts={"Email": "x@y.z"})])

    assert [r.outcome for r in summary.results] == ["loaded", "rejected", "rejected"]
    assert [r.reason_code for r in summary.results][1:] == ["unmappable", "unmappable"]
    rejections = {r.source_key: r for r in IngestRejection.objects.all()}
    assert rejections["001B"].reason == (
        "mapping kind from RecordType.Name: 'Partner Account' is not in the value map"
    )
    assert rejections["001B"].payload == bad
    assert rejections["001C"].reason == (
        "mapping email from Contacts[0].Email: expected a list at Contacts, got an object"
    )
    assert not SourceRecord.objects.filter(source_key__in=["001B", "001C"]).exists()


def test_a_rejection_replays_through_the_mapping_fixed_since():
    save_mapping_version(system_code="crm", entity_type="customer", spec=CRM_ACCOUNT, actor="t")
    ingest([account("001B", RecordType={"Name": "Partner Account"})])
    fixed = json.loads(json.dumps(CRM_ACCOUNT))
    fixed["fields"]["kind"]["map"]["Partner Account"] = "organization"
    save_mapping_version(system_code="crm", entity_type="customer", spec=fixed, actor="t")

    counts = replay_rejections(rejections=IngestRejection.objects.all(), actor="t")

    assert counts == {"replayed": 1, "still_rejected": 0}
    assert SourceRecord.objects.get(source_key="001B").attributes["kind"] == "organization"


def test_a_bad_mapping_is_refused_at_save_time_and_nothing_is_written():
    spec = {"fields": {"source_key": "Id", "colour": "Colour", "date_of_birth": {
        "path": "Born", "date": "%d.%m.%Q"}}}  # fmt: skip

    with pytest.raises(InvalidMapping) as raised:
        save_mapping_version(system_code="crm", entity_type="customer", spec=spec, actor="t")

    assert [where for where, _ in raised.value.problems] == [
        "fields.colour",
        "fields.date_of_birth.date",
    ]
    assert not SourceMapping.objects.exists()


def test_versions_are_numbered_one_is_active_and_an_earlier_one_can_come_back():
    first = save_mapping_version(
        system_code="crm", entity_type="customer", spec=CRM_ACCOUNT, actor="t"
    )
    second = save_mapping_version(
        system_code="crm", entity_type="customer", spec={"fields": {"source_key": "Key"}},
        actor="t", note="keys moved",
    )  # fmt: skip

    assert (first.version, second.version) == (1, 2)
    assert mapping_versions() == {("crm", "customer"): 2}
    assert active_mapping(system_code="crm", entity_type="customer").version == 2

    activate_mapping_version(mapping=first, actor="t", reason="back")

    assert mapping_versions() == {("crm", "customer"): 1}
    assert [h.active for h in first.history.order_by("history_id")] == [True, False, True]
    deactivate_mappings(system_code="crm", entity_type="customer", actor="t", reason="off")
    assert active_mapping(system_code="crm", entity_type="customer") is None


def test_without_a_mapping_canonical_records_load_as_before():
    summary = ingest([{"source_key": "c1", "name": "Acme"}])

    assert summary.counts["loaded"] == 1
    assert SourceRecord.objects.get(source_key="c1").raw == {"source_key": "c1", "name": "Acme"}


def write_ndjson(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_load_source_with_a_yaml_mapping_file(tmp_path):
    mapping = tmp_path / "crm.yaml"
    mapping.write_text(
        "system: crm\nentity: customer\nfields:\n  source_key: Id\n  name: Name\n"
        "  kind:\n    path: RecordType.Name\n    map: {Business Account: organization}\n"
    )
    data = write_ndjson(tmp_path / "accounts.ndjson", [account("001A"), {"Name": "no id"}])
    out = io.StringIO()

    call_command("load_source", data, system="crm", entity="customer", mapping=mapping, stdout=out)

    assert "loaded 1" in out.getvalue()
    assert "rejected line 2: mapping source_key from Id: required, but missing or blank" in (
        out.getvalue()
    )
    assert SourceRecord.objects.get(source_key="001A").attributes["kind"] == "organization"
    assert not SourceMapping.objects.exists()  # a file's mapping is used, not stored


def test_load_source_with_a_json_mapping_file(tmp_path):
    mapping = tmp_path / "crm.json"
    mapping.write_text(json.dumps(CRM_ACCOUNT))
    data = write_ndjson(tmp_path / "accounts.ndjson", [account("001A")])

    call_command("load_source", data, system="crm", entity="customer", mapping=mapping,
                 stdout=io.StringIO())  # fmt: skip

    assert SourceRecord.objects.get(source_key="001A").attributes["country"] == "GB"


def test_load_source_refuses_a_bad_mapping_file_naming_field_and_reason(tmp_path):
    mapping = tmp_path / "crm.yaml"
    mapping.write_text("fields:\n  source_key: Id\n  name: {path: 'Name[x]'}\n")
    data = write_ndjson(tmp_path / "accounts.ndjson", [account("001A")])

    with pytest.raises(CommandError, match=r"fields\.name\.path: bad path 'Name\[x\]'"):
        call_command("load_source", data, system="crm", entity="customer", mapping=mapping)

    assert not SourceRecord.objects.exists()


def test_load_source_uses_the_active_mapping_unless_told_the_file_is_canonical(tmp_path):
    save_mapping_version(system_code="crm", entity_type="customer", spec=CRM_ACCOUNT, actor="t")
    native = write_ndjson(tmp_path / "native.ndjson", [account("001A")])
    canonical = write_ndjson(tmp_path / "canonical.ndjson", [{"source_key": "c1", "name": "B"}])

    call_command("load_source", native, system="crm", entity="customer", stdout=io.StringIO())
    call_command("load_source", canonical, system="crm", entity="customer", canonical=True,
                 stdout=io.StringIO())  # fmt: skip

    assert set(SourceRecord.objects.values_list("source_key", flat=True)) == {"001A", "c1"}


@pytest.mark.postgres(reason="parallel loading needs PostgreSQL (SQLite loads in-process)")
@pytest.mark.django_db(transaction=True)
def test_a_parallel_load_splits_native_rows_by_their_mapped_key(tmp_path):
    from mdm.mappings import compile_mapping
    from mdm.services.load import load_file

    mapping = compile_mapping(CRM_ACCOUNT, entity_type="customer")
    rows = [account(f"001{i:03d}", Name=f"Firma {i}") for i in range(40)]
    rows.append(account("001007", Name="Firma 7 neu", LastModifiedDate="2025-07-01T00:00:00Z"))
    data = write_ndjson(tmp_path / "accounts.ndjson", rows)

    summary = load_file(data, entity_type="customer", system_code="crm", actor="t", reason="t",
                        jobs=3, mapping=mapping)  # fmt: skip

    assert summary.counts["loaded"] == 40
    assert summary.counts["updated"] == 1
    assert SourceRecord.objects.get(source_key="001007").attributes["name"] == "Firma 7 neu"
