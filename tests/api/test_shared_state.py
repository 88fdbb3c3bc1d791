"""What several server processes must share: a revoked token is refused at once by every
process (not after its token cache expires), and the throttle counts a token's requests
across processes. Real processes on the test database, with the shared cache of each mode:
Redis (REDIS_URL) and, without it, files under var/."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from api.models import IntegrationToken
from mdm.services.ingest import get_source_system
from tests.api.conftest import bearer

ROOT = Path(__file__).resolve().parents[2]
SERVER = """
import sys, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
for line in sys.stdin:
    print(client.get(line.strip()).status_code, flush=True)
"""


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(params=["redis", "files"])
def environment(request, tmp_path) -> dict[str, str]:
    """The environment of a server process on the test database, in one cache mode."""
    env = {**os.environ, "DATABASE_URL": _database_url(), "LOG_LEVEL": "ERROR"}
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("needs REDIS_URL")
        env["REDIS_URL"] = settings.REDIS_URL
    else:
        env.pop("REDIS_URL", None)
        env["KEYSTONE_VAR_DIR"] = str(tmp_path / "var")
    return env


class Server:
    """A process answering GET requests (one path per line on stdin) with the token."""

    def __init__(self, env: dict[str, str], token: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, token],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def get(self, path: str) -> int:
        self.process.stdin.write(path + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=20)


def issue_token() -> str:
    _, token = IntegrationToken.issue(get_source_system("crm", create=True))
    return token


@pytest.mark.postgres(reason="other processes see the test database only on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_revoked_token_is_refused_at_once_by_another_process(environment):
    token = issue_token()
    server = Server(environment, token)
    try:
        assert server.get("/api/v1/events") == 200  # verified, and remembered
        assert server.get("/api/v1/events") == 200

        subprocess.run(  # another process rotates crm's token: the old one is revoked
            [sys.executable, "manage.py", "create_integration", "crm"],
            cwd=ROOT,
            env=environment,
            check=True,
            capture_output=True,
        )

        assert server.get("/api/v1/events") == 401
    finally:
        server.stop()


@pytest.mark.postgres(reason="other processes see the test database only on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_throttle_counts_a_tokens_requests_across_processes(environment):
    token = issue_token()
    environment["KEYSTONE_API_THROTTLE_RATE"] = "3/day"  # one window for the whole test
    first, second = Server(environment, token), Server(environment, token)
    try:
        statuses = [first.get("/api/v1/events"), second.get("/api/v1/events")]
        statuses += [first.get("/api/v1/events"), second.get("/api/v1/events")]
    finally:
        first.stop()
        second.stop()

    assert statuses == [200, 200, 200, 429]


@pytest.mark.django_db
def test_a_token_revoked_in_this_process_is_refused_at_its_next_request(
    crm_token, django_capture_on_commit_callbacks
):
    client = bearer(crm_token)
    assert client.get("/api/v1/events").status_code == 200  # remembered

    with django_capture_on_commit_callbacks(execute=True):
        call_command("create_integration", "crm", stdout=io.StringIO(), stderr=io.StringIO())

    assert client.get("/api/v1/events").status_code == 401


@pytest.mark.django_db
def test_a_change_of_scopes_takes_effect_at_the_next_request(
    crm_token, django_capture_on_commit_callbacks
):
    client = bearer(crm_token)
    assert client.get("/api/v1/events").status_code == 200
    token = IntegrationToken.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        token.scopes = ["xref:read"]
        token.save()  # what the admin's form does

    assert client.get("/api/v1/events").status_code == 403


@override_settings(KEYSTONE_API_THROTTLE_RATE="off")
@pytest.mark.django_db
def test_throttling_can_be_switched_off(crm):
    assert all(crm.get("/api/v1/events").status_code == 200 for _ in range(5))
