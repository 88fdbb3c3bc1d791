"""Merge and split previews: what survivorship would produce, exactly what the merge or the
split then stores, with nothing written and a fixed number of queries."""

import pytest

from mdm.models import GoldenRecord, SourceRecord
from mdm.selectors import merge_preview, split_preview
from mdm.services.ingest import ingest_records
from mdm.services.pins import pin_value
from mdm.services.resolution import merge, split

pytestmark = pytest.mark.django_db


def load(system: str, rows: list[dict]) -> list[SourceRecord]:
    ingest_records(
        entity_type="customer",
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
    )
    keys = [r["source_key"] for r in rows]
    return list(SourceRecord.objects.filter(source_key__in=keys).order_by("pk"))


def golden(record: SourceRecord) -> GoldenRecord:
    return GoldenRecord.objects.get(pk=SourceRecord.objects.get(pk=record.pk).golden_id)


@pytest.fixture
def two_goldens():
    (crm,) = load("crm", [{"source_key": "c1", "name": "Acme Corp", "city": "Berlin"}])
    (erp,) = load(
        "erp",
        [{"source_key": "e1", "name": "ACME Corporation GmbH", "city": "Bonn", "phone": "+4930"}],
    )
    return golden(crm), golden(erp)


def _history_rows() -> int:
    return GoldenRecord.history.count() + SourceRecord.history.count()


def test_the_merge_preview_is_what_the_merge_stores(two_goldens):
    survivor, loser = two_goldens
    pin_value(golden=loser, attribute="city", value="Hamburg", actor="steward", reason="moved")
    loser.refresh_from_db()
    written = _history_rows()

    preview = merge_preview(survivor, loser)

    assert _history_rows() == written
    merged = merge(survivor=survivor, loser=loser, actor="test", reason="same")
    assert preview.values == merged.values
    assert preview.lineage == merged.lineage
    assert preview.display_name == merged.display_name
    assert preview.values["city"] == "Hamburg"  # the loser's pin moves with its records
    assert "name" in preview.conflicts


def test_the_split_preview_is_what_the_split_stores(two_goldens):
    survivor, loser = two_goldens
    merged = merge(survivor=survivor, loser=loser, actor="test", reason="same")
    erp = SourceRecord.objects.get(source_key="e1")

    staying, leaving = split_preview(merged, [erp.pk])

    created = split(golden=merged, records=[erp], actor="test", reason="not the same")
    merged.refresh_from_db()
    assert (staying.values, staying.lineage) == (merged.values, merged.lineage)
    assert (leaving.values, leaving.display_name) == (created.values, created.display_name)
    assert leaving.record_ids == [erp.pk]


def test_previews_read_a_fixed_number_of_queries(django_assert_max_num_queries):
    def goldens_of(n: int):
        crm = load("crm", [{"source_key": f"c{n}-{i}", "name": f"Firm {i}"} for i in range(n)])
        erp = load("erp", [{"source_key": f"e{n}-{i}", "name": f"Firm {i} AG"} for i in range(n)])
        left, right = golden(crm[0]), golden(erp[0])
        for record in crm[1:]:
            left = merge(survivor=left, loser=golden(record), actor="t", reason="t")
        for record in erp[1:]:
            right = merge(survivor=right, loser=golden(record), actor="t", reason="t")
        return left, right

    small = goldens_of(2)
    large = goldens_of(12)

    with django_assert_max_num_queries(6):
        merge_preview(*small)
    with django_assert_max_num_queries(6):
        merge_preview(*large)
    with django_assert_max_num_queries(6):
        split_preview(large[0], [r.pk for r in large[0].members.all()[:3]])
