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
    """Tasks run in-process unless a test asks for the real worker."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield


@pytest.fixture
def steward(django_user_model):
    return django_user_model.objects.create_user("steward", password="pw-steward-123")
