import json
from functools import cache

import pytest
from django.conf import settings


def pytest_addoption(parser):
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        default=None,
        help="write the browser tests' screenshots to DIR (make screenshots: docs/screenshots); "
        "by default they go to a temporary directory",
    )


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.postgres(reason=...)` is how a test says it needs PostgreSQL: on any other
    database it skips, with the reason."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    for item in items:
        marker = item.get_closest_marker("postgres")
        if marker is not None:
            reason = marker.kwargs.get("reason", "set DATABASE_URL to a PostgreSQL database")
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL only: {reason}"))


def pytest_report_header(config):
    from django.db import connection

    return f"database: {connection.vendor}; broker: {settings.REDIS_URL or 'none (eager)'}"


@pytest.fixture(scope="session", autouse=True)
def _empty_test_broker():
    """The Redis database the tests use (REDIS_URL) is emptied when the session starts and
    when it ends: no task message a test sent and no worker consumed is left behind for the
    next run or a later worker to pick up."""
    if not settings.REDIS_URL:
        yield
        return
    import redis

    broker = redis.Redis.from_url(settings.REDIS_URL)
    try:
        broker.flushdb()
    except redis.ConnectionError:  # no Redis: the tests that need it say so themselves
        broker = None
    yield
    if broker is not None:
        broker.flushdb()
        broker.close()


@pytest.fixture(autouse=True)
def _celery_eager(settings):
    """Tasks run in-process unless a test asks for the real worker. Webhooks are dispatched
    when a test says so (as with a broker), whether or not REDIS_URL is set."""
    from config.celery import app

    app.conf.task_always_eager = True
    settings.KEYSTONE_WEBHOOK_DISPATCH_ON_COMMIT = False
    yield


@pytest.fixture
def steward(django_user_model):
    return django_user_model.objects.create_user("steward", password="pw-steward-123")


@cache
def _event_validators() -> dict:
    import jsonschema_rs

    from mdm.contracts import event_schemas

    return {
        event_type: jsonschema_rs.validator_for(schema, validate_formats=True)
        for event_type, schema in event_schemas().items()
    }


def assert_event_follows_its_schema(event) -> None:
    """The event as the feed and webhooks send it validates against its type's published
    JSON Schema, at the version it says."""
    from api.serializers import EventSerializer

    sent = json.loads(json.dumps(EventSerializer(event).data, default=str))
    errors = [e.message for e in _event_validators()[event.event_type].iter_errors(sent)]
    assert not errors, (event.event_type, errors, sent)


@pytest.fixture(autouse=True)
def _every_emitted_event_follows_its_schema(monkeypatch):
    """Anywhere in the suite, every event the code emits is checked against its published
    schema as it is written (events go through `mdm.services.events.emit_many`)."""
    from mdm.models import OutboxEvent
    from mdm.services import events

    write = events.insert_rows

    def write_and_check(model, objs, **kwargs):
        write(model, objs, **kwargs)
        if model is OutboxEvent:
            for event in objs:
                assert_event_follows_its_schema(event)

    monkeypatch.setattr(events, "insert_rows", write_and_check)
