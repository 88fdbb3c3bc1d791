import pytest
from django.conf import settings


def pytest_report_header(config):
    from django.db import connection

    return f"database: {connection.vendor}; broker: {settings.REDIS_URL or 'none (eager)'}"


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
