"""The operator commands, run as an operator runs them."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from mdm.models import GoldenRecord, IngestRejection, RejectionStatus, SourceRecord

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = """source_key,kind,name,email,date_of_birth,country,source_updated_at,crm_segment
1,organization,ACME Inc.,info@acme.com,,DE,2026-01-01T00:00:00Z,enterprise
2,person,Jane Doe,jane@example.org,1985-03-12,US,2026-01-01T00:00:00Z,
,organization,Keyless Ltd,,,GB,,
3,person,John Roe,john@example.org,31/02/1980,GB,2026-01-01T00:00:00Z,
4,organization,Bad Timestamp GmbH,,,DE,last tuesday,
5,organization,Wrong Entity BV,,,NL,,
"""


def run(*args, **options):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue()


@pytest.fixture
def customers_csv(tmp_path):
    path = tmp_path / "crm_customers.csv"
    path.write_text(CUSTOMERS_CSV)
    return path


def test_load_source_loads_good_rows_and_lists_each_bad_one_with_line_and_reason(customers_csv):
    output = run("load_source", str(customers_csv), system="crm", entity="customer")

    assert (
        "crm_customers.csv: loaded 4, updated 0, unchanged 0, stale 0, deleted 0, rejected 2"
        in output
    )
    assert "rejected line 4: source_key: missing" in output
    assert "rejected line 6: source_updated_at: not an ISO 8601 date-time: 'last tuesday'" in output
    assert "flagged line 5: date_of_birth:" in output
    assert set(IngestRejection.objects.values_list("line_number", flat=True)) == {4, 6}
    assert SourceRecord.objects.get(source_key="1").extra == {"crm_segment": "enterprise"}


def test_loading_the_same_file_twice_reports_every_row_unchanged_and_writes_no_history(
    customers_csv,
):
    run("load_source", str(customers_csv), system="crm", entity="customer")
    history = (
        SourceRecord.history.count(),
        GoldenRecord.history.count(),
        IngestRejection.objects.count(),
    )

    output = run("load_source", str(customers_csv), system="crm", entity="customer")

    assert "loaded 0, updated 0, unchanged 4, stale 0, deleted 0, rejected 2" in output
    assert (
        SourceRecord.history.count(),
        GoldenRecord.history.count(),
        IngestRejection.objects.count(),
    ) == history


def test_ndjson_rows_with_wrong_entity_unknown_value_type_and_broken_json_are_rejected(tmp_path):
    path = tmp_path / "erp.ndjson"
    lines = [
        json.dumps({"source_key": "P1", "sku": "ab-1", "name": "Widget", "list_price": "1,234.50"}),
        json.dumps({"source_key": "P2", "entity": "customer", "name": "Not a product"}),
        json.dumps({"source_key": "P3", "name": ["a", "list"]}),
        '{"source_key": "P4", "name": ',
        "",
        json.dumps({"source_key": "P5", "sku": "CD-2", "name": "Gadget", "gtin": "4006381333931"}),
    ]
    path.write_text("\n".join(lines) + "\n")

    output = run("load_source", str(path), system="erp", entity="product")

    assert "loaded 2, updated 0, unchanged 0, stale 0, deleted 0, rejected 3" in output
    reasons = dict(IngestRejection.objects.values_list("line_number", "reason"))
    assert reasons[2] == "entity: row says 'customer' but this load is 'product'"
    assert reasons[3] == "name: expected a single value, got list"
    assert reasons[4].startswith("not valid JSON")
    assert IngestRejection.objects.get(line_number=4).payload == {"unparsed_line": lines[3] + "\n"}
    assert SourceRecord.objects.get(source_key="P1").attributes["list_price"] == "1234.50"


def test_load_source_refuses_an_unsupported_file_type(tmp_path):
    path = tmp_path / "rows.xlsx"
    path.write_text("x")

    with pytest.raises(CommandError, match="unsupported file type"):
        run("load_source", str(path), system="crm", entity="customer")


def test_export_xref_lists_every_live_source_record(customers_csv, tmp_path):
    run("load_source", str(customers_csv), system="crm", entity="customer")
    out = tmp_path / "xref.csv"

    run("export_xref", "customer", output=str(out))

    rows = list(csv.DictReader(out.open()))
    assert [r["source_key"] for r in rows] == sorted(
        ["1", "2", "3", "5"], key=lambda k: SourceRecord.objects.get(source_key=k).golden_id
    )
    assert rows[0].keys() == {"golden_id", "source_system", "source_key"}
    assert {r["golden_id"] for r in rows} == set(GoldenRecord.objects.values_list("id", flat=True))


def test_export_golden_writes_attributes_per_golden_record(customers_csv):
    run("load_source", str(customers_csv), system="crm", entity="customer")

    output = run("export_golden", "customer")

    rows = list(csv.DictReader(io.StringIO(output)))
    acme = next(r for r in rows if r["name"] == "ACME Inc.")
    assert acme["country"] == "DE" and acme["golden_status"] == "active"
    assert len(rows) == 4


def test_replay_loads_a_fixed_rejection_and_marks_it_replayed(customers_csv):
    run("load_source", str(customers_csv), system="crm", entity="customer")
    rejection = IngestRejection.objects.get(line_number=4)
    rejection.payload["source_key"] = "7"
    rejection.save()

    output = run("replay_rejections", replay=True, ids=[rejection.pk])

    assert "replayed 1, still rejected 0" in output
    rejection.refresh_from_db()
    assert rejection.status == RejectionStatus.REPLAYED
    assert SourceRecord.objects.filter(source_key="7").exists()


def test_replay_of_a_still_bad_rejection_keeps_it_open():
    IngestRejection.objects.create(
        entity_type="customer", source_system="crm", reason="x", payload={"name": "No key"}
    )

    output = run("replay_rejections", replay=True)

    assert "replayed 0, still rejected 1" in output
    assert IngestRejection.objects.get().reason == "source_key: missing"


def test_a_nul_character_in_a_file_rejects_that_row_only(tmp_path):
    path = tmp_path / "nul.csv"
    path.write_text("source_key,kind,name\n1,organization,Good GmbH\n2,organization,Bad\x00 AG\n")

    output = run("load_source", str(path), system="crm", entity="customer")

    assert "loaded 1, updated 0, unchanged 0, stale 0, deleted 0, rejected 1" in output
    assert "rejected line 3: name: contains a NUL character" in output
    assert IngestRejection.objects.get().payload["name"] == "Bad\\u0000 AG"
