import json
from functools import cache

import pytest
from django.conf import settings


def pytest_report_header(config):
    from django.db import connection

    return f"database: {connection.vendor}; broker: {settings.REDIS_URL or 'none (eager)'}"


@pytest.fixture(autouse=True)
def _celery_eager(settings):
    """Tasks run in-process unless a test asks for the real worker."""
    from config.celery import app

    app.conf.task_always_eager = True
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
