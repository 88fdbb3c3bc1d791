"""Match requests: written with the ingest, drained by a task or the sweep, never lost."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone

from matching import services
from matching.services import match_request, run_batch_matching
from matching.tasks import sweep_match_requests
from mdm.models import MatchRequest, SourceRecord
from mdm.selectors import pending_matching
from mdm.services.ingest import ingest_records
from mdm.services.match_requests import claim_match_request

pytestmark = pytest.mark.django_db


def _ingest(system: str, *rows: dict):
    return ingest_records(
        entity_type="customer",
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
    )


def _near_duplicate(febrl_sample, key: str, new_key: str) -> dict:
    row = next(dict(r) for r in febrl_sample["crm"] if r["source_key"] == key)
    row["address_line1"] += "x"
    return row | {"source_key": new_key}


def test_ingest_requests_matching_of_what_it_changed(load_febrl):
    load_febrl()

    by_system = {p.source_system: p for p in pending_matching()}
    assert set(by_system) == {"crm", "erp"}
    crm_records = SourceRecord.objects.filter(source_system__code="crm").count()
    assert by_system["crm"].records == crm_records
    assert by_system["crm"].entity_type == "customer"
    assert by_system["crm"].oldest <= timezone.now()
    requested = {i for r in MatchRequest.objects.all() for i in r.record_ids}
    assert requested == set(SourceRecord.objects.values_list("pk", flat=True))


def test_unchanged_reload_requests_nothing(load_febrl, febrl_sample):
    load_febrl()
    MatchRequest.objects.all().delete()

    _ingest("crm", *febrl_sample["crm"])

    assert not MatchRequest.objects.exists()


@override_settings(KEYSTONE_MATCH_REQUEST_SWEEP_SECONDS=0)
def test_a_request_whose_message_was_lost_is_matched_by_the_sweep(customer_model, febrl_sample):
    run_batch_matching(entity_type="customer", actor="test")
    MatchRequest.objects.all().delete()
    # Not captured: the commit's signal never runs here, as if the broker had been down.
    _ingest("billing", _near_duplicate(febrl_sample, "rec-10-org", "b-10"))
    duplicate = SourceRecord.objects.get(source_key="b-10")
    original = SourceRecord.objects.get(source_key="rec-10-org")
    assert duplicate.golden_id != original.golden_id

    sent = sweep_match_requests.delay().get()

    duplicate.refresh_from_db()
    assert sent == {"sent": 1}
    assert duplicate.golden_id == original.golden_id
    assert not MatchRequest.objects.exists()


def test_a_claimed_request_is_not_claimed_again_until_its_lease_runs_out(load_febrl):
    load_febrl()
    request = MatchRequest.objects.first()

    first = claim_match_request(request_id=request.pk, lease_seconds=60)
    second = claim_match_request(request_id=request.pk, lease_seconds=60)
    MatchRequest.objects.filter(pk=request.pk).update(available_at=timezone.now())
    after_lease = claim_match_request(request_id=request.pk, lease_seconds=60)

    assert first is not None and first.attempts == 1
    assert second is None
    assert after_lease is not None and after_lease.attempts == 2


def test_a_failed_match_keeps_the_request_for_later_with_the_error_class(load_febrl, monkeypatch):
    load_febrl()
    request = MatchRequest.objects.first()

    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "match_records", database_gone)
    with pytest.raises(OperationalError):
        match_request(request_id=request.pk, actor="test")

    request.refresh_from_db()
    assert request.last_error == "OperationalError"
    assert request.attempts == 1
    assert request.available_at > timezone.now() + timedelta(seconds=5)  # backing off
    assert match_request(request_id=request.pk, actor="test") is None  # not before then
