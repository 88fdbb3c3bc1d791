"""The export-style sparse set (`demo.export`): deterministic by seed, non-canonical columns
that its source mapping turns into customers with no kind and no country, national phone
numbers that still read as numbers."""

from demo.export import EXPORT_COLUMNS, EXPORT_MAPPING
from demo.sparse import sparse_organizations
from mdm.entities import get_entity
from mdm.mappings import compile_mapping
from mdm.normalize import normalize_record


def test_the_same_seed_gives_the_same_export_and_another_seed_another():
    first = sparse_organizations(organizations=120, seed=5, style="export")

    assert first == sparse_organizations(organizations=120, seed=5, style="export")
    assert first.rows != sparse_organizations(organizations=120, seed=6, style="export").rows
    assert len(set(first.truth.values())) == 120


def test_every_exported_row_maps_to_a_customer_without_kind_or_country():
    export = sparse_organizations(organizations=200, seed=5, style="export")
    mapping = compile_mapping(EXPORT_MAPPING, entity_type="customer")
    entity = get_entity("customer")

    for system, rows in export.rows.items():
        assert all(tuple(row) == EXPORT_COLUMNS for row in rows)
        for row in rows:
            mapped = mapping.apply(row)
            normalized = normalize_record(entity, mapped)
            assert mapped["source_key"] == row["id"]
            assert (system, row["id"]) in export.truth
            assert "kind" not in normalized.values and "country" not in normalized.values
            assert normalized.invalid == {}, row
