"""One correlation ID follows a record: the ingest request → the match request and its task →
the events its merges write → the webhook deliveries' headers → the JSON log lines."""

import io
import json
import logging

import pytest

from api.models import IntegrationToken
from api.webhooks import create_subscription, deliver, dispatch_new_events
from config.logs import CorrelationFilter, JsonFormatter
from matching.services import match_request, run_batch_matching
from mdm.context import audit_context
from mdm.models import MatchRequest, OutboxEvent, SourceRecord
from mdm.services.ingest import get_source_system, ingest_records
from tests.api.conftest import bearer
from tests.api.receiver import Receiver
from tests.matching.conftest import customer_model, febrl_sample, load_febrl  # noqa: F401


@pytest.fixture
def json_log():
    """What the root logger writes at INFO, as LOG_FORMAT=json writes it: one dict per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CorrelationFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def _copy_of(febrl_sample, key: str) -> dict:  # noqa: F811
    row = next(row for row in febrl_sample["crm"] if row["source_key"] == key)
    return {name: value for name, value in row.items() if name != "source_key"}


@pytest.mark.django_db(transaction=True)  # ingest's match request and events run on commit
def test_one_correlation_id_follows_a_record_from_ingest_to_delivery(
    customer_model,  # noqa: F811
    febrl_sample,  # noqa: F811
    settings,
    json_log,
):
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    run_batch_matching(entity_type="customer", actor="test")  # a hub that has matched before
    _, token = IntegrationToken.issue(get_source_system("billing", create=True))
    first_new_event = (
        OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    ) + 1
    with Receiver() as receiver:
        create_subscription(url=receiver.url, owner=None, from_event=first_new_event)

        response = bearer(token).put(
            "/api/v1/sources/billing/customer/BIL-5",
            _copy_of(febrl_sample, "rec-5-org"),
            format="json",
            HTTP_X_CORRELATION_ID="corr-follow-1",
        )
        for delivery_id in dispatch_new_events():  # as the webhook worker would, later
            deliver(delivery_id)

    assert response.status_code == 201, response.content
    assert response["X-Correlation-ID"] == "corr-follow-1"
    record = SourceRecord.objects.get(source_key="BIL-5")
    original = SourceRecord.objects.get(source_key="rec-5-org")
    assert record.golden_id == original.golden_id  # the match task linked it
    events = list(OutboxEvent.objects.filter(id__gte=first_new_event))
    assert {"golden.created", "golden.merged"} <= {event.event_type for event in events}
    assert {event.correlation_id for event in events} == {"corr-follow-1"}
    assert len(receiver.requests) == len(events)
    assert {r["headers"]["X-Correlation-ID"] for r in receiver.requests} == {"corr-follow-1"}
    lines = json_log()
    match_lines = [line for line in lines if line["logger"] == "matching.services"]
    delivery_lines = [line for line in lines if line["logger"] == "api.webhooks"]
    assert match_lines and delivery_lines
    assert {line["correlation_id"] for line in match_lines + delivery_lines} == {"corr-follow-1"}


@pytest.mark.django_db(transaction=True)
def test_a_match_request_matched_later_runs_under_its_ingest_correlation_id(
    customer_model,  # noqa: F811
    febrl_sample,  # noqa: F811
    monkeypatch,
):
    from matching import tasks

    run_batch_matching(entity_type="customer", actor="test")
    monkeypatch.setattr(tasks, "enqueue_match_requests", lambda ids: None)  # the message is lost
    with audit_context(correlation="corr-ingest-9"):
        ingest_records(
            entity_type="customer",
            system_code="billing",
            rows=[(1, {"source_key": "BIL-7", **_copy_of(febrl_sample, "rec-7-org")})],
            actor="test",
            create_system=True,
        )
    request = MatchRequest.objects.get(source_system__code="billing")
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first()

    with audit_context(correlation="corr-sweep-task"):  # the sweep's task, later
        match_request(request_id=request.pk, actor="test")

    assert request.correlation_id == "corr-ingest-9"
    merges = OutboxEvent.objects.filter(id__gt=before, event_type="golden.merged")
    assert merges.exists()
    assert set(merges.values_list("correlation_id", flat=True)) == {"corr-ingest-9"}


def test_json_log_lines_carry_the_correlation_id_and_extra_fields():
    record = logging.LogRecord(
        "keystone.test", logging.WARNING, __file__, 1, "hello %s", ("you",), None
    )
    record.records = 3
    CorrelationFilter().filter(record)

    with audit_context(correlation="corr-log-1"):
        record_in_context = logging.LogRecord(
            "keystone.test", logging.INFO, __file__, 1, "x", (), None
        )
        CorrelationFilter().filter(record_in_context)
    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "hello you" and line["level"] == "WARNING" and line["records"] == 3
    assert line["logger"] == "keystone.test" and "time" in line
    assert json.loads(JsonFormatter().format(record_in_context))["correlation_id"] == "corr-log-1"
