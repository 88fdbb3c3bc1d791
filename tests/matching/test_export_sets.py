"""A real two-source export of businesses (`demo.export`: id, name, addr, city, phone, type;
no kind, no country), loaded through a source mapping and matched in batch: businesses of one
hotel (one street address, its switchboard) stay apart, and one business written two ways
(another city alias, a suite, a leading "The") is linked."""

import json

import pytest
from django.core.management import call_command

from demo.export import EXPORT_COLUMNS, EXPORT_MAPPING
from demo.sparse import sparse_organizations
from matching.scoring import explain_pair
from matching.specs import CUSTOMER_SPEC
from mdm.models import SourceRecord

CUSTOMER = CUSTOMER_SPEC.thresholds
# Two restaurants of one hotel in guide "a" (one address, the hotel's switchboard), and the
# first again in guide "b", written its way.
HOTEL = {
    "a": [
        {
            "id": "a9001",
            "name": "The Blue Heron Grill",
            "addr": "500 Harbor Blvd.",
            "city": "Los Angeles",
            "phone": "310/246-1501",
            "type": "american",
        },
        {
            "id": "a9002",
            "name": "Chez Lumière",
            "addr": "500 Harbor Blvd.",
            "city": "Los Angeles",
            "phone": "310/246-1501",
            "type": "french",
        },
    ],
    "b": [
        {
            "id": "b9001",
            "name": "blue heron grill",
            "addr": "500 harbor boulevard, lobby floor",
            "city": "l.a.",
            "phone": "310-246-1501",
            "type": "american (new)",
        }
    ],
}


def _load(tmp_path, rows: dict[str, list[dict]]) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(EXPORT_MAPPING), encoding="utf-8")
    for system, system_rows in rows.items():
        path = tmp_path / f"{system}.csv"
        lines = [",".join(EXPORT_COLUMNS)]
        lines += [",".join(json.dumps(row[c]) for c in EXPORT_COLUMNS) for row in system_rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        call_command(
            "load_source",
            str(path),
            system=system,
            entity="customer",
            mapping=mapping,
            no_progress=True,
            stdout=None,
        )


def _record(key: str) -> SourceRecord:
    return SourceRecord.objects.get(source_key=key)


@pytest.mark.django_db
def test_a_hotels_restaurants_stay_apart_and_one_restaurant_written_two_ways_links(tmp_path):
    export = sparse_organizations(organizations=200, seed=11, style="export").rows
    _load(tmp_path, {"a": [*export["a"], *HOTEL["a"]], "b": [*export["b"], *HOTEL["b"]]})

    call_command("run_matching", "customer", stdout=None)

    heron, lumiere, copy = _record("a9001"), _record("a9002"), _record("b9001")
    assert heron.attributes["phone"] == "+13102461501"  # national, no country column
    assert "kind" not in heron.attributes
    assert copy.golden_id == heron.golden_id
    assert lumiere.golden_id not in (heron.golden_id, copy.golden_id)
    apart = explain_pair(left_record_id=heron.pk, right_record_id=lumiere.pk)
    assert apart.probability < CUSTOMER.sparse_bar
