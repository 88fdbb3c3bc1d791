"""`mdm.selectors.held_dates`: the dates of birth clustering's twin rule reads."""

import pytest

from mdm.models import SourceRecord
from mdm.selectors import held_dates
from mdm.services.ingest import ingest_records

pytestmark = pytest.mark.django_db


def test_held_dates_are_the_valid_dates_of_the_named_golden_records_members():
    ingest_records(
        entity_type="customer",
        system_code="crm",
        rows=list(
            enumerate(
                [
                    {
                        "source_key": "a",
                        "kind": "person",
                        "name": "Eric Osborn",
                        "date_of_birth": "1984-02-11",
                    },
                    {"source_key": "b", "kind": "person", "name": "Eric Osborn"},
                    {
                        "source_key": "c",
                        "kind": "person",
                        "name": "Eric Osborn",
                        "date_of_birth": "not a date",
                    },
                    {
                        "source_key": "d",
                        "kind": "person",
                        "name": "Eric Osborn",
                        "date_of_birth": "19860923",
                    },
                ],
                start=1,
            )
        ),
        actor="test",
        create_system=True,
    )
    records = {r.source_key: r for r in SourceRecord.objects.all()}
    membership = {r.pk: r.golden_id for r in records.values()}
    named = {records[k].golden_id for k in "abc"}

    held = held_dates("customer", membership, named)

    assert held == {records["a"].pk: "1984-02-11"}
    assert held_dates("product", membership, named) == {}
