"""Incremental matching: a committed ingest → signal → (eager) task → linked or queued."""

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from matching.decisions import decide
from matching.frame import frame_from_rows
from matching.keys import blocking_keys, key_rows
from matching.models import CandidateStatus, MatchCandidate, MatchKey, TermFrequency
from matching.services import match_records, run_batch_matching
from matching.specs import get_spec
from mdm.models import LinkMethod, SourceRecord
from mdm.services.ingest import ingest_records
from mdm.services.resolution import split

pytestmark = pytest.mark.django_db

NAME_ONLY = ("kind", "given_name", "family_name", "country")
OTHER_BIRTHDAY = {"date_of_birth": "19650812"}


def _record(system: str, key: str) -> SourceRecord:
    return SourceRecord.objects.get(source_system__code=system, source_key=key)


def _crm(febrl_sample, key: str) -> dict:
    return next(dict(r) for r in febrl_sample["crm"] if r["source_key"] == key)


@pytest.fixture
def matched(customer_model):
    return run_batch_matching(entity_type="customer", actor="test")


@pytest.fixture
def ingest(django_capture_on_commit_callbacks):
    """Ingest rows and run what their commit triggers (the signal → the eager task)."""

    def ingest_rows(system: str, *rows: dict, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            ingest_records(
                entity_type="customer",
                system_code=system,
                rows=list(enumerate(rows, start=1)),
                actor="test",
                create_system=True,
                **kwargs,
            )

    return ingest_rows


def test_near_duplicate_is_linked_on_ingest(matched, febrl_sample, ingest):
    row = _crm(febrl_sample, "rec-10-org") | {"source_key": "b-10"}
    row["address_line1"] += "x"

    ingest("billing", row)

    duplicate, original = _record("billing", "b-10"), _record("crm", "rec-10-org")
    assert duplicate.golden_id == original.golden_id
    assert duplicate.link_method == LinkMethod.AUTO
    assert duplicate.link_probability >= 0.95


def test_doubtful_record_becomes_a_match_candidate_not_a_link(matched, febrl_sample, ingest):
    base = _crm(febrl_sample, "rec-10-org")
    row = {k: v for k, v in base.items() if k in NAME_ONLY} | {"source_key": "b-11"}

    ingest("billing", row | OTHER_BIRTHDAY)

    doubtful, original = _record("billing", "b-11"), _record("crm", "rec-10-org")
    assert doubtful.golden_id != original.golden_id
    candidate = MatchCandidate.objects.get(
        Q(left=original, right=doubtful) | Q(left=doubtful, right=original)
    )
    assert candidate.status == CandidateStatus.OPEN
    assert 0.5 <= candidate.probability < 0.95
    assert candidate.explanation["given_name_key"]["left"] == "mikhayla", candidate.explanation


def test_without_a_model_ingest_matches_nothing(load_febrl, febrl_sample, ingest):
    load_febrl()
    row = _crm(febrl_sample, "rec-10-org") | {"source_key": "b-10"}

    ingest("billing", row)

    assert _record("billing", "b-10").link_method == LinkMethod.NEW
    assert not MatchKey.objects.exists()
    summary = match_records(
        entity_type="customer", record_ids=[_record("billing", "b-10").pk], actor="test"
    )
    assert summary.skipped == "no active model" and summary.pairs_scored == 0


def test_a_split_blocks_incremental_linking_and_changed_evidence_returns_it_to_review(
    matched, febrl_sample, ingest
):
    original, duplicate = _record("crm", "rec-3-org"), _record("erp", "rec-3-dup-0")
    split(golden=original.golden, records=[duplicate], actor="steward", reason="not the same")
    changed = next(r for r in febrl_sample["erp"] if r["source_key"] == "rec-3-dup-0")

    ingest("erp", changed | {"phone": "+61 2 9999 0000"})

    kept, moved = _record("crm", "rec-3-org").golden_id, _record("erp", "rec-3-dup-0").golden_id
    assert kept != moved
    candidate = MatchCandidate.objects.get(
        status=CandidateStatus.OPEN,
        left_golden_id=min(kept, moved),
        right_golden_id=max(kept, moved),
    )
    assert "changed since" in candidate.reason  # evidence changed: back to review


def test_not_a_match_decided_on_a_candidate_stays_decided_when_matched_again(
    matched, febrl_sample, ingest
):
    base = _crm(febrl_sample, "rec-10-org")
    row = {k: v for k, v in base.items() if k in NAME_ONLY} | {"source_key": "b-11"}
    ingest("billing", row | OTHER_BIRTHDAY)
    doubtful, original = _record("billing", "b-11"), _record("crm", "rec-10-org")
    candidate = MatchCandidate.objects.get(
        Q(left=original, right=doubtful) | Q(left=doubtful, right=original)
    )
    decide(candidate=candidate, verdict="not_a_match", actor="steward", reason="twins")

    match_records(entity_type="customer", record_ids=[doubtful.pk], actor="test")

    candidate.refresh_from_db()
    assert candidate.status == CandidateStatus.NOT_A_MATCH
    assert _record("billing", "b-11").golden_id != original.golden_id
    goldens = {original.golden_id, doubtful.golden_id}
    assert not [
        c
        for c in MatchCandidate.objects.filter(status=CandidateStatus.OPEN)
        if {c.left_golden_id, c.right_golden_id} == goldens
    ]


def test_deleted_record_leaves_the_index_and_its_candidates_are_superseded(
    matched, febrl_sample, ingest
):
    base = _crm(febrl_sample, "rec-10-org")
    row = {k: v for k, v in base.items() if k in NAME_ONLY} | {"source_key": "b-11"}
    row |= OTHER_BIRTHDAY
    ingest("billing", row)

    ingest("billing", row | {"deleted": True})

    doubtful = _record("billing", "b-11")
    assert not MatchKey.objects.filter(record=doubtful).exists()
    candidate = MatchCandidate.objects.get(Q(left=doubtful) | Q(right=doubtful))
    assert candidate.status == CandidateStatus.SUPERSEDED


def test_matching_a_record_twice_changes_nothing(matched, febrl_sample, ingest):
    row = _crm(febrl_sample, "rec-10-org") | {"source_key": "b-10"}
    ingest("billing", row)
    goldens = dict(SourceRecord.objects.values_list("pk", "golden_id"))

    again = match_records(
        entity_type="customer", record_ids=[_record("billing", "b-10").pk], actor="test"
    )

    assert again.merges == 0
    assert dict(SourceRecord.objects.values_list("pk", "golden_id")) == goldens


def test_batch_run_indexes_every_live_record_by_its_blocking_keys(matched):
    record = _record("crm", "rec-10-org")

    names = set(MatchKey.objects.filter(record=record).values_list("name", flat=True))

    assert {"given_name_key+family_name_key", "tax_id_key"} <= names
    assert MatchKey.objects.values("record").distinct().count() == SourceRecord.objects.count()


@pytest.mark.postgres(reason="planner statistics are PostgreSQL's (SQLite plans without them)")
def test_batch_run_leaves_the_planner_statistics_of_what_it_rewrote_current(matched):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN "
            "('matching_matchkey', 'matching_termfrequency')"
        )
        estimated = dict(cursor.fetchall())
    # Never analyzed, PostgreSQL would report -1 (or the 0 rows it saw last): the planner
    # would treat the rebuilt index as empty.
    assert estimated["matching_matchkey"] == MatchKey.objects.count() > 0
    assert estimated["matching_termfrequency"] == TermFrequency.objects.count() > 0


@pytest.mark.postgres(reason="the indexes are dropped and rebuilt on PostgreSQL only")
def test_a_large_rebuild_builds_the_same_indexes_after_the_load(matched, monkeypatch):
    from django.db import connection

    from matching import keys
    from matching.frame import build_frame

    def indexes():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'matching_matchkey'"
            )
            return sorted(cursor.fetchall())

    spec = get_spec("customer")
    before, stored = indexes(), sorted(MatchKey.objects.values_list("name", "value", "record"))
    assert len(before) >= 3  # primary key, lookup, record
    monkeypatch.setattr(keys, "BULK_REBUILD_MIN_KEYS", 1)

    written = keys.rebuild_index(spec, build_frame(spec))

    assert indexes() == before
    assert "INCLUDE (record_id)" in dict(before)["matchkey_lookup"]  # read by the index only
    assert written == len(stored)
    assert sorted(MatchKey.objects.values_list("name", "value", "record")) == stored
    record = _record("crm", "rec-10-org")
    found = keys.candidates("customer", key_rows(spec, build_frame(spec, record_ids=[record.pk])))
    assert found[record.pk]  # the lookup index answers again


def test_blocking_keys_are_derived_from_the_spec_rules():
    spec = get_spec("customer")
    frame = frame_from_rows(
        spec,
        [(7, {"given_name_key": "jane", "family_name_key": "doe", "postal_code_key": "2257"}, {})],
    )

    keys = {row["name"]: row["value"] for row in key_rows(spec, frame).to_pylist()}

    assert len(blocking_keys(spec)) == len(spec.blocking_rules)
    assert keys == {
        "given_name_key+family_name_key": "jane\x1fdoe",
        "postal_code_key+substr(family_name_key, 1, 3)": "2257\x1fdoe",
    }


def test_probe_writes_nothing(matched, febrl_sample):
    from matching.services import probe_matches

    with CaptureQueriesContext(connection) as queries:
        probe_matches(entity_type="customer", attributes=_crm(febrl_sample, "rec-10-org"))

    writes = [q["sql"] for q in queries if q["sql"].split()[0].upper() != "SELECT"]
    assert writes == []


@pytest.mark.postgres(reason="the key write runs on a thread of its own on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_keys_are_written_beside_matching_outside_a_transaction(
    customer_model, febrl_sample, monkeypatch
):
    import threading

    from matching import keys

    run_batch_matching(entity_type="customer", actor="test")
    writers = []
    real = keys.write_keys

    def spy(*args, **kwargs):
        writers.append(threading.current_thread() is not threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(keys, "write_keys", spy)
    row = _crm(febrl_sample, "rec-10-org") | {"source_key": "b-10"}
    threads = threading.active_count()

    ingest_records(  # committed: the incremental task runs (eagerly) outside a transaction
        entity_type="customer",
        system_code="billing",
        rows=[(1, row)],
        actor="test",
        create_system=True,
    )

    duplicate = _record("billing", "b-10")
    assert writers == [True]
    assert duplicate.golden_id == _record("crm", "rec-10-org").golden_id
    stored = set(MatchKey.objects.filter(record_id=duplicate.pk).values_list("name", "value"))
    spec = get_spec("customer")
    frame = frame_from_rows(spec, [(duplicate.pk, duplicate.match_keys, duplicate.attributes)])
    assert stored == {(r["name"], r["value"]) for r in key_rows(spec, frame).to_pylist()}
    assert threading.active_count() == threads  # the writer is done and gone


@pytest.mark.postgres(reason="VACUUM and the visibility map are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_batch_run_outside_a_transaction_vacuums_the_key_table(customer_model):
    run_batch_matching(entity_type="customer", actor="test")
    record = SourceRecord.objects.order_by("pk").first()
    spec = get_spec("customer")
    found_keys = key_rows(spec, frame_from_rows(spec, [(record.pk, record.match_keys, {})]))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relallvisible, relpages FROM pg_class WHERE relname = 'matching_matchkey'"
        )
        all_visible, pages = cursor.fetchone()
        cursor.execute("SET enable_seqscan = off")  # a small table: make it use the index
        try:
            cursor.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT record_id FROM matching_matchkey "
                "WHERE entity_type = 'customer' AND name = %s AND value = %s",
                [found_keys["name"][0].as_py(), found_keys["value"][0].as_py()],
            )
            plan = cursor.fetchone()[0][0]["Plan"]
        finally:
            cursor.execute("RESET enable_seqscan")

    assert pages > 0 and all_visible == pages  # VACUUM set the visibility map
    assert plan["Node Type"] == "Index Only Scan" and plan["Heap Fetches"] == 0
