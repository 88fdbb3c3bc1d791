"""Loading a file in parallel worker processes (PostgreSQL) gives exactly what one process
gives: the same counts, rejections, golden records, relations and history."""

from __future__ import annotations

import csv
import io
import multiprocessing

import pytest
from django.core.management import call_command
from django.db import connections

from mdm.models import GoldenRecord, IngestRejection, SourceRecord
from mdm.services import load
from mdm.services.load import (
    LoadFailed,
    _resolve_late_relations,
    load_file,
    load_jobs,
    partition_of,
)
from tests.processes import child_processes

needs_postgres = pytest.mark.postgres(
    reason="parallel loading needs PostgreSQL (SQLite allows one writer; it loads in-process)",
)

COLUMNS = ["source_key", "kind", "name", "tax_id", "country", "parent_key", "source_updated_at"]


def write_file(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def customer_rows(count: int) -> list[dict]:
    """`count` organizations; every tenth has a parent among the others (before or after it
    in the file), one key repeats with a newer update, and three rows are bad."""
    rows = []
    for i in range(count):
        rows.append(
            {
                "source_key": f"C{i:05d}",
                "kind": "organization",
                "name": f"Firma {i} GmbH",
                "tax_id": f"DE{100000000 + i}",
                "country": "DE",
                "parent_key": f"C{(i * 7 + 3) % count:05d}" if i % 10 == 0 else "",
                "source_updated_at": "2026-01-01T00:00:00Z",
            }
        )
    rows.append({**rows[5], "name": "Firma 5 AG", "source_updated_at": "2026-02-01T00:00:00Z"})
    rows.append({**rows[6], "name": "Old Name", "source_updated_at": "2025-01-01T00:00:00Z"})
    rows.append({**rows[7], "source_key": ""})
    rows.append({**rows[8], "source_key": "BAD-TS", "source_updated_at": "yesterday-ish"})
    rows.append({**rows[9], "source_key": "C00009"})  # unchanged repeat
    return rows


def state() -> dict:
    goldens = {g.id: g for g in GoldenRecord.objects.all()}
    by_key = {r.source_key: r for r in SourceRecord.objects.select_related("golden")}
    return {
        "records": {
            key: (r.attributes, r.deleted, r.golden.values, r.golden.status)
            for key, r in by_key.items()
        },
        "parents": {
            key: by_key[key].golden.parent_id and _key_of(goldens, by_key, r.golden.parent_id)
            for key, r in by_key.items()
        },
        "rejections": sorted(IngestRejection.objects.values_list("line_number", "reason")),
        "history": (
            SourceRecord.history.count(),
            GoldenRecord.history.filter(history_type="+").count(),
        ),
        "golden_updates": GoldenRecord.history.filter(history_type="~").count(),
    }


def _key_of(goldens, by_key, golden_id):
    return next(k for k, r in by_key.items() if r.golden_id == golden_id)


def test_partition_is_stable_by_stripped_key_and_sends_keyless_rows_to_worker_zero():
    assert partition_of({"source_key": " K1 "}, 4) == partition_of({"source_key": "K1"}, 4)
    assert {partition_of({"source_key": f"K{i}"}, 4) for i in range(100)} == {0, 1, 2, 3}
    assert partition_of({"name": "no key"}, 4) == 0
    assert partition_of(["not", "a", "mapping"], 4) == 0


@pytest.mark.django_db
def test_one_process_inside_a_transaction_or_for_small_files():
    assert load_jobs(None, 1_000_000) == 1  # the test's own transaction
    assert load_jobs(8, 10) == 1


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_load_gives_what_a_single_process_gives(tmp_path):
    path = write_file(tmp_path / "crm.csv", customer_rows(400))

    single = load_file(
        path, entity_type="customer", system_code="crm", actor="t", reason="r", jobs=1
    )
    expected = state()
    call_command("flush", verbosity=0, interactive=False)

    parallel = load_file(
        path, entity_type="customer", system_code="crm", actor="t", reason="r", jobs=3
    )
    got = state()

    assert parallel.counts == single.counts
    assert parallel.counts["loaded"] == 400 and parallel.counts["rejected"] == 2
    assert parallel.counts["updated"] == 1 and parallel.counts["stale"] == 1
    assert parallel.rejections == single.rejections  # in line order
    assert got["records"] == expected["records"]
    assert got["parents"] == expected["parents"]
    assert sum(1 for parent in got["parents"].values() if parent) == 40
    assert got["rejections"] == expected["rejections"]
    assert got["history"] == expected["history"]
    # A child met its parent within one chunk in one process; across workers it may have been
    # created first and updated when the parent arrived: one "~" row each, at most.
    assert expected["golden_updates"] <= got["golden_updates"] <= 40

    again = load_file(
        path, entity_type="customer", system_code="crm", actor="t", reason="r", jobs=3
    )
    assert again.counts["unchanged"] == 401 and again.counts["loaded"] == 0
    assert (state()["history"], state()["golden_updates"]) == (
        got["history"],
        got["golden_updates"],
    )


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_load_source_uses_workers_and_prints_the_same_summary(tmp_path):
    path = write_file(tmp_path / "crm.csv", customer_rows(200))
    out = io.StringIO()
    call_command("load_source", str(path), system="crm", entity="customer", jobs=2, stdout=out)
    assert "crm.csv: loaded 200, updated 1, unchanged 1, stale 1, deleted 0, rejected 2" in (
        out.getvalue()
    )
    assert "rejected line 204: source_key: missing" in out.getvalue()


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_worker_fails_the_load_and_leaves_no_worker_behind(tmp_path, monkeypatch):
    path = write_file(tmp_path / "crm.csv", customer_rows(200))
    real = load.ingest_records

    def ingest_failing_at_c00013(*, rows, **options):
        def checked():
            for line, row in rows:
                if row["source_key"] == "C00013":
                    raise ValueError("disk full at C00013")
                yield line, row

        return real(rows=checked(), **options)

    monkeypatch.setattr(load, "ingest_records", ingest_failing_at_c00013)

    with pytest.raises(LoadFailed, match="crm.csv: a load worker failed: disk full at C00013"):
        load_file(path, entity_type="customer", system_code="crm", actor="t", reason="r", jobs=2)

    assert child_processes() == []
    assert not SourceRecord.objects.filter(source_key="C00013").exists()


def _load_in_a_daemon(path, results) -> None:
    try:
        summary = load_file(
            path, entity_type="customer", system_code="crm", actor="t", reason="r", jobs=2
        )
        results.put(("loaded", summary.counts["loaded"]))
    except BaseException as error:
        results.put(("error", repr(error)))


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_file_loads_in_parallel_inside_a_daemonic_process_as_a_celery_prefork_child_is(
    tmp_path,
):
    path = write_file(tmp_path / "crm.csv", customer_rows(100))
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    daemon = context.Process(target=_load_in_a_daemon, args=(path, results), daemon=True)
    connections.close_all()  # a forked process must never share this one's connection

    daemon.start()
    outcome = results.get(timeout=120)
    daemon.join(timeout=30)

    assert outcome == ("loaded", 100)
    assert SourceRecord.objects.filter(source_system__code="crm").count() == 100
    assert child_processes() == []


@pytest.mark.django_db
def test_a_relation_missed_by_a_concurrent_worker_is_resolved_after_the_load(tmp_path):
    path = write_file(tmp_path / "crm.csv", customer_rows(50))
    load_file(path, entity_type="customer", system_code="crm", actor="t", reason="r", jobs=1)
    child = SourceRecord.objects.get(source_key="C00010").golden
    parent_id = child.parent_id
    assert parent_id is not None
    GoldenRecord.objects.filter(pk=child.pk).update(parent=None)  # as if the race lost it

    system_id = SourceRecord.objects.get(source_key="C00010").source_system_id
    keys = set(SourceRecord.objects.values_list("source_key", flat=True))
    _resolve_late_relations("customer", system_id, keys, actor="t", reason="r")

    child.refresh_from_db()
    assert child.parent_id == parent_id
