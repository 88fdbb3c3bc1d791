"""/metrics: Prometheus text, protected, and its figures move with what Keystone does."""

import ipaddress
from io import StringIO

import pytest
from django.core.management import call_command

from tests.ops.conftest import scrape, value


@pytest.fixture
def open_metrics(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = (__import__("ipaddress").ip_network("127.0.0.0/8"),)
    settings.PROMETHEUS_MULTIPROC_DIR = ""


@pytest.mark.django_db
def test_metrics_answer_a_peer_in_the_allowed_networks_and_refuse_others(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.1.0.0/16"),)

    inside = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    outside = client.get("/metrics", REMOTE_ADDR="10.2.0.1")

    assert inside.status_code == 200
    assert inside["Content-Type"].startswith("text/plain")
    assert b"keystone_review_queue_open" in inside.content
    assert outside.status_code == 403


@pytest.mark.django_db
def test_metrics_with_a_token_need_it_as_bearer(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    settings.METRICS_ALLOWED_NETWORKS = ()

    missing = client.get("/metrics", REMOTE_ADDR="10.2.0.1")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", REMOTE_ADDR="10.2.0.1")
    right = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", REMOTE_ADDR="10.2.0.1"
    )

    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert right.status_code == 200


@pytest.mark.django_db
def test_metrics_are_refused_when_nothing_allows_them(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ()

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.post("/metrics", REMOTE_ADDR="127.0.0.1").status_code in (403, 405)


@pytest.mark.django_db(transaction=True)  # counters move when a chunk commits
def test_figures_move_after_load_source_and_run_matching(client, open_metrics, febrl_files):
    before = scrape(client)

    call_command(
        "load_source", febrl_files["crm"], system="crm", entity="customer", stdout=StringIO()
    )
    call_command(
        "load_source", febrl_files["erp"], system="erp", entity="customer", stdout=StringIO()
    )
    loaded = scrape(client)
    call_command("run_matching", "customer", stdout=StringIO())
    matched = scrape(client)

    def moved(figures, name, **labels):
        return value(figures, name, **labels) - value(before, name, **labels)

    crm = {"system": "crm", "entity": "customer"}
    assert moved(loaded, "keystone_ingest_records_total", **crm, outcome="loaded") == 80
    assert moved(loaded, "keystone_ingest_records_total", **crm, outcome="rejected") == 1
    assert (
        moved(
            loaded,
            "keystone_ingest_records_total",
            system="erp",
            entity="customer",
            outcome="loaded",
        )
        > 80
    )
    assert moved(loaded, "keystone_ingest_chunk_seconds_count", **crm) >= 1
    assert value(loaded, "keystone_rejections_open", **crm) == 1
    assert value(loaded, "keystone_events_high_water_mark") > value(
        before, "keystone_events_high_water_mark"
    )
    assert moved(loaded, "keystone_events_written_total", type="golden.created") > 160

    merges = moved(matched, "keystone_match_auto_links_total", entity="customer", mode="batch")
    assert merges > 0
    assert moved(matched, "keystone_match_records_total", entity="customer", mode="batch") > 160
    assert moved(matched, "keystone_match_seconds_count", entity="customer", mode="batch") == 1
    assert value(matched, "keystone_match_run_auto_link_rate", entity="customer") > 0
    assert value(matched, "keystone_match_run_records", entity="customer") > 160
    assert moved(matched, "keystone_events_written_total", type="golden.merged") == merges


def _ingest(system: str, count: int, start: int = 0) -> None:
    from mdm.services.ingest import ingest_records

    rows = [
        {"source_key": f"{system}-{n}", "name": f"Company {n}"} for n in range(start, start + count)
    ]
    rows.append({"name": "no key"})
    ingest_records(
        entity_type="customer",
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
    )


@pytest.mark.django_db
def test_a_scrape_costs_the_same_queries_whatever_the_number_of_records(
    client, open_metrics, django_assert_max_num_queries
):
    _ingest("crm", 3)
    with django_assert_max_num_queries(30) as few:
        scrape(client)

    _ingest("crm", 300, start=3)

    with django_assert_max_num_queries(len(few.captured_queries)):
        scrape(client)


@pytest.mark.django_db(transaction=True)  # deliveries commit their claim before sending
def test_deliveries_dead_letters_and_subscription_lag(client, open_metrics, settings):
    from api.webhooks import create_subscription, deliver, dispatch_new_events
    from tests.api.receiver import Receiver

    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.KEYSTONE_WEBHOOK_MAX_ATTEMPTS = 1
    before = scrape(client)
    with Receiver(status=500) as receiver:
        subscription = create_subscription(url=receiver.url, owner=None, name="down", from_event=1)
        _ingest("crm", 2)  # two golden.created events
        waiting = scrape(client)
        for delivery_id in dispatch_new_events():
            deliver(delivery_id)
    after = scrape(client)

    labels = {"subscription": str(subscription.pk), "name": "down"}
    assert value(waiting, "keystone_subscription_events_behind", **labels) == 2
    assert value(waiting, "keystone_subscription_seconds_behind", **labels) >= 0
    assert value(after, "keystone_subscription_events_behind", **labels) == 0
    assert value(after, "keystone_webhook_dead_letters", **labels) == 2
    dead = value(after, "keystone_webhook_deliveries_total", outcome="dead")
    assert dead - value(before, "keystone_webhook_deliveries_total", outcome="dead") == 2


@pytest.mark.django_db
def test_celery_queue_lengths_are_read_from_the_broker(client, open_metrics, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL)")
    import redis

    from tests.celery_worker import forget_queue, new_queue

    queue = new_queue("test-metrics")
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    settings.KEYSTONE_WEBHOOK_QUEUE = queue
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.rpush(queue, b"1", b"2", b"3")
    try:
        figures = scrape(client)
    finally:
        forget_queue(settings.REDIS_URL, queue)

    assert value(figures, "keystone_celery_queue_length", queue=queue) == 3


@pytest.mark.django_db(transaction=True)  # the test points its own connection elsewhere
def test_a_scrape_answers_when_the_database_is_down(client, open_metrics):
    """The database cannot be read (PostgreSQL: the connection goes to a port nobody listens
    on; SQLite, whose test database lives in memory and cannot be closed: every statement
    fails as a locked database does): the scrape still answers 200 with the process counters,
    says keystone_database_up 0, and answers 1 again once the database is back."""
    from contextlib import ExitStack

    from django.db import OperationalError, connection

    def locked(execute, sql, params, many, context):
        raise OperationalError("database is locked")

    assert value(scrape(client), "keystone_database_up") == 1
    saved = dict(connection.settings_dict)
    with ExitStack() as down:
        if connection.vendor == "postgresql":
            connection.close()
            connection.settings_dict.update(HOST="127.0.0.1", PORT=9)  # discard: nothing listens
            down.callback(connection.settings_dict.update, saved)
            down.callback(connection.close)
        else:
            down.enter_context(connection.execute_wrapper(locked))
        figures = scrape(client)

    assert value(figures, "keystone_database_up") == 0
    assert not any(name == "keystone_review_queue_open" for name, _ in figures)
    assert any(name == "python_info" for name, _ in figures)  # this process's own figures
    assert value(scrape(client), "keystone_database_up") == 1
