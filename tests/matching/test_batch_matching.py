"""Batch matching end to end: ingest → run_matching → merged golden records."""

import itertools
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Q

from matching.models import CandidateStatus, MatchCandidate, MatchModel, MatchRun, RunStatus
from matching.services import run_batch_matching
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from tests.matching.conftest import entity_of, open_candidate

pytestmark = pytest.mark.django_db


def _record(system: str, key: str) -> SourceRecord:
    return SourceRecord.objects.select_related("golden").get(
        source_system__code=system, source_key=key
    )


def _golden_of_each_record() -> dict[str, str]:
    return dict(SourceRecord.objects.values_list("source_key", "golden_id"))


@pytest.fixture
def matched(customer_model):
    originals = dict(
        SourceRecord.objects.filter(source_system__code="crm").values_list(
            "source_key", "golden_id"
        )
    )
    summary = run_batch_matching(entity_type="customer", actor="test")
    return summary, originals


def test_near_duplicate_across_systems_is_merged(matched):
    original, duplicate = _record("crm", "rec-5-org"), _record("erp", "rec-5-dup-0")

    assert original.golden_id == duplicate.golden_id
    assert duplicate.link_method in ("auto", "new")


def test_clearly_different_customers_stay_apart(matched):
    assert _record("crm", "rec-1-org").golden_id != _record("crm", "rec-2-org").golden_id


def test_cluster_keeps_the_golden_id_of_its_oldest_record(matched):
    _, originals = matched
    duplicate = _record("erp", "rec-5-dup-0")

    assert duplicate.golden_id == originals["rec-5-org"]
    assert GoldenRecord.objects.get(pk=originals["rec-5-org"]).status == GoldenStatus.ACTIVE


def test_merged_golden_ids_redirect_to_the_survivor(matched):
    summary, _ = matched
    merged = GoldenRecord.objects.filter(entity_type="customer", status=GoldenStatus.MERGED)

    assert merged.count() == summary.merges > 0
    assert not merged.filter(merged_into__status=GoldenStatus.MERGED).exists()


def test_second_run_changes_nothing(matched):
    before = _golden_of_each_record()
    candidates_before = list(MatchCandidate.objects.values_list("pk", "probability", "status"))

    second = run_batch_matching(entity_type="customer", actor="test")

    assert second.merges == 0
    assert second.goldens_before == second.goldens_after
    assert _golden_of_each_record() == before
    assert list(MatchCandidate.objects.values_list("pk", "probability", "status")) == (
        candidates_before
    )
    assert MatchModel.objects.filter(entity_type="customer").count() == 1


def test_auto_links_are_precise_and_find_most_duplicates(matched):
    keys_by_golden: dict[str, list[str]] = {}
    for key, golden_id in _golden_of_each_record().items():
        keys_by_golden.setdefault(golden_id, []).append(key)
    predicted = {
        frozenset(pair)
        for keys in keys_by_golden.values()
        for pair in itertools.combinations(keys, 2)
    }
    keys = list(_golden_of_each_record())
    truth = {
        frozenset(pair)
        for pair in itertools.combinations(keys, 2)
        if entity_of(pair[0]) == entity_of(pair[1])
    }

    true_positives = len(predicted & truth)
    assert true_positives / len(predicted) >= 0.98  # precision
    assert true_positives / len(truth) >= 0.9  # recall


def test_not_a_match_decision_survives_rematch(customer_model):
    from matching.decisions import decide

    original, duplicate = _record("crm", "rec-3-org"), _record("erp", "rec-3-dup-0")
    candidate = open_candidate(original, duplicate, probability=1.0, match_weight=20.0)
    decide(candidate=candidate, verdict="not_a_match", actor="steward", reason="twins")

    run_batch_matching(entity_type="customer", actor="test")

    assert _record("crm", "rec-3-org").golden_id != _record("erp", "rec-3-dup-0").golden_id
    candidate.refresh_from_db()
    assert candidate.status == CandidateStatus.NOT_A_MATCH


def test_review_band_pairs_become_candidates_with_explanations_not_merges(customer_model, settings):
    settings.KEYSTONE_MATCH_THRESHOLDS = {"customer": {"auto_link": 1.01, "review": 0.5}}

    summary = run_batch_matching(entity_type="customer", actor="test")

    assert summary.merges == 0
    assert summary.sent_to_review == MatchCandidate.objects.count() > 0
    candidate = MatchCandidate.objects.get(
        Q(left__source_key="rec-5-org", right__source_key="rec-5-dup-0")
        | Q(left__source_key="rec-5-dup-0", right__source_key="rec-5-org")
    )
    assert candidate.probability >= 0.5
    assert candidate.explanation["family_name_key"]["left"] == candidate.left.match_keys.get(
        "family_name_key"
    )
    assert {"level", "left", "right", "match_weight"} <= set(candidate.explanation["tax_id_key"])


def test_run_matching_command_prints_the_summary(load_febrl):
    load_febrl()
    out = StringIO()

    call_command("run_matching", "customer", stdout=out)

    text = out.getvalue()
    assert "pairs scored:" in text and "auto-linked:" in text and "golden records:" in text
    run = MatchRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    assert run.goldens_after < run.goldens_before


@pytest.mark.parametrize("id_list_limit", [1, 5000])
def test_membership_and_creation_order_of_some_records(load_febrl, monkeypatch, id_list_limit):
    from matching import services
    from mdm.db import ids

    monkeypatch.setattr(ids, "SQLITE_ID_LIST_LIMIT", id_list_limit)  # SQLite: in Python
    load_febrl()
    records = list(SourceRecord.objects.order_by("-pk")[:5])
    wanted = {r.pk for r in records[:3]}

    membership = services._membership("customer", record_ids=wanted)
    order = services._created_at({r.golden_id for r in records})

    assert membership == {r.pk: r.golden_id for r in records[:3]}
    by_creation = sorted(records, key=lambda r: (r.golden.created_at, r.golden_id))
    assert sorted(order, key=order.get) == [r.golden_id for r in by_creation]


def test_run_matching_retrain_with_an_active_model_stages_it(customer_model):
    out = StringIO()

    call_command("run_matching", "customer", "--retrain", stdout=out)

    assert "staged customer model v2: nothing applied" in out.getvalue()
    assert MatchRun.objects.get().merges == 0


# ------------------------------------------------------------------ the key rebuild beside training


def _stored_keys() -> set[tuple[str, str, int]]:
    from matching.models import MatchKey

    return set(MatchKey.objects.values_list("name", "value", "record_id"))


def _keys_of_every_live_record() -> set[tuple[str, str, int]]:
    from matching.frame import build_frame
    from matching.keys import key_rows
    from matching.specs import get_spec

    spec = get_spec("customer")
    rows = key_rows(spec, build_frame(spec)).to_pylist()
    return {(row["name"], row["value"], row["record_id"]) for row in rows}


@pytest.mark.postgres(reason="the rebuild runs on a thread of its own on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_a_batch_run_writes_the_keys_on_a_thread_of_its_own_while_it_trains(
    load_febrl, monkeypatch
):
    import threading

    from matching import keys, services

    load_febrl()
    events: list[str] = []
    rebuild, train = keys.rebuild_index, services.train_model

    def rebuild_spy(*args, **kwargs):
        events.append(
            "rebuild on a thread"
            if threading.current_thread() is not threading.main_thread()
            else "rebuild inline"
        )
        return rebuild(*args, **kwargs)

    def train_spy(*args, **kwargs):
        events.append("train")
        return train(*args, **kwargs)

    monkeypatch.setattr(keys, "rebuild_index", rebuild_spy)
    monkeypatch.setattr(services, "train_model", train_spy)
    threads = threading.active_count()

    summary = run_batch_matching(entity_type="customer", actor="test", retrain=True)

    assert sorted(events) == ["rebuild on a thread", "train"]
    assert summary.merges > 0
    assert _stored_keys() == _keys_of_every_live_record()
    assert threading.active_count() == threads  # the rebuild is done and gone


@pytest.mark.django_db(transaction=True)
def test_a_failed_key_rebuild_fails_the_run(load_febrl, monkeypatch):
    from matching import keys

    load_febrl()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(keys, "rebuild_index", broken)

    with pytest.raises(RuntimeError, match="disk full"):
        run_batch_matching(entity_type="customer", actor="test", retrain=True)

    run = MatchRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert "disk full" in run.error
    assert not GoldenRecord.objects.filter(status=GoldenStatus.MERGED).exists()  # nothing applied


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_training_fails_waits_for_the_key_rebuild(load_febrl, monkeypatch):
    import threading
    import time

    from matching import keys, services

    load_febrl()
    rebuild = keys.rebuild_index
    rebuilding = threading.Event()

    def slow_rebuild(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            rebuilding.wait(timeout=10)  # still writing when training fails
            time.sleep(0.5)
        return rebuild(*args, **kwargs)

    def failing_training(*args, **kwargs):
        rebuilding.set()
        raise RuntimeError("EM diverged")

    monkeypatch.setattr(keys, "rebuild_index", slow_rebuild)
    monkeypatch.setattr(services, "train_model", failing_training)
    threads = threading.active_count()

    with pytest.raises(RuntimeError, match="EM diverged"):
        run_batch_matching(entity_type="customer", actor="test", retrain=True)

    assert MatchRun.objects.get().status == RunStatus.FAILED
    assert threading.active_count() == threads  # no write outlives the failed run
    assert _stored_keys() == _keys_of_every_live_record()
