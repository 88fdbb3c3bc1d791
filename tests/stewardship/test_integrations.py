"""The Integrations page: per source system what came in, what was rejected (replayable),
its mapping version and token use; per subscription lag and dead letters (replayable).
Auditors read it and change nothing."""

import pytest
from django.utils import timezone

from api.models import DeliveryStatus, IntegrationToken, WebhookDelivery
from api.webhooks import create_subscription
from mdm.models import IngestRejection, OutboxEvent, RejectionStatus, SourceRecord
from mdm.services.ingest import get_source_system, ingest_records

URL = "/steward/integrations/"


def load(system: str, rows: list[dict], capture) -> None:
    with capture(execute=True):  # volumes are counted when a chunk commits
        ingest_records(
            entity_type="customer",
            system_code=system,
            rows=list(enumerate(rows, start=1)),
            actor="test",
            create_system=True,
        )


@pytest.fixture
def integrations(db, django_capture_on_commit_callbacks, settings):
    """crm: 3 records, one rejected; erp: 1 record; a crm token used now; a crm-owned
    subscription with one dead letter and one event not yet dispatched to it."""
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    load(
        "crm",
        [
            {"source_key": "C1", "name": "Acme"},
            {"source_key": "C2", "name": "Globex"},
            {"name": "no key"},
        ],
        django_capture_on_commit_callbacks,
    )
    load("erp", [{"source_key": "E1", "name": "Acme GmbH"}], django_capture_on_commit_callbacks)
    crm = get_source_system("crm")
    token, _ = IntegrationToken.issue(crm)
    IntegrationToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    subscription = create_subscription(
        url="http://127.0.0.1:9/hook", owner=crm, name="crm-hook", from_event=1
    )
    first = OutboxEvent.objects.order_by("id").first()
    WebhookDelivery.objects.create(
        subscription=subscription, event=first, status=DeliveryStatus.DEAD, attempts=8
    )
    type(subscription).objects.filter(pk=subscription.pk).update(last_event_id=first.pk)
    return subscription


def test_steward_sees_each_source_system_with_its_day(steward_client, integrations):
    page = steward_client.get(URL)

    assert page.status_code == 200
    html = page.content.decode()
    crm = next(row for row, _ in page.context["rows"] if row.system.code == "crm")
    erp = next(row for row, _ in page.context["rows"] if row.system.code == "erp")
    assert (crm.activity.received_total, crm.activity.rejected_total) == (3, 1)
    assert (erp.activity.received_total, erp.activity.rejected_total) == (1, 0)
    assert crm.open_rejections == 1 and erp.open_rejections == 0
    assert crm.activity.last_seen_at is not None
    assert crm.token_last_used is not None and not erp.has_token
    assert crm.mapping_version is None and 'class="ks-mapping">—<' in html
    lag = page.context["subscriptions"][0]
    assert lag.dead_letters == 1
    assert lag.events_behind == OutboxEvent.objects.count() - 1  # all but the dead one
    assert '<svg class="ks-chart"' in html and "<rect" in html
    assert 'value="replay_rejections"' in html and 'value="replay_dead_letters"' in html


def test_page_queries_do_not_grow_with_source_systems(
    steward_client, integrations, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    steward_client.get(URL)  # warm: session and permissions
    with django_assert_max_num_queries(40) as few:
        steward_client.get(URL)
    for code in ("billing", "success", "support", "partner"):
        load(code, [{"source_key": "X1", "name": "Initech"}], django_capture_on_commit_callbacks)

    with django_assert_max_num_queries(len(few.captured_queries)):
        steward_client.get(URL)


def test_steward_replays_a_systems_rejections_and_a_subscriptions_dead_letters(
    steward_client, integrations
):
    rejection = IngestRejection.objects.get()
    IngestRejection.objects.filter(pk=rejection.pk).update(
        payload={"source_key": "C3", "name": "Fixed Ltd"}
    )

    steward_client.post(URL, {"action": "replay_rejections", "system": "crm"})
    steward_client.post(URL, {"action": "replay_dead_letters", "subscription": integrations.pk})

    assert IngestRejection.objects.get().status == RejectionStatus.REPLAYED
    assert SourceRecord.objects.filter(source_key="C3").exists()
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.DEAD).exists()


def test_auditor_reads_the_page_without_buttons_and_cannot_replay(auditor_client, integrations):
    page = auditor_client.get(URL)
    replay = auditor_client.post(URL, {"action": "replay_rejections", "system": "crm"})
    dead = auditor_client.post(
        URL, {"action": "replay_dead_letters", "subscription": integrations.pk}
    )

    assert page.status_code == 200
    assert 'name="action"' not in page.content.decode()
    assert (replay.status_code, dead.status_code) == (403, 403)
    assert IngestRejection.objects.get().status == RejectionStatus.OPEN
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DEAD).count() == 1


def test_mapping_versions_show_once_source_mappings_say_them(
    steward_client, integrations, monkeypatch
):
    from mdm import selectors

    versions = {("crm", "customer"): 3, ("crm", "contract"): 1}
    monkeypatch.setattr(selectors, "mapping_versions", lambda: versions, raising=False)

    page = steward_client.get(URL)

    crm = next(row for row, _ in page.context["rows"] if row.system.code == "crm")
    erp = next(row for row, _ in page.context["rows"] if row.system.code == "erp")
    assert crm.mapping_version == "contract v1 · customer v3"
    assert erp.mapping_version is None
