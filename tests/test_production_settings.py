"""Production-safe settings, checked on real processes started without DEBUG: DEBUG is off
unless set, the process refuses to start on the public SECRET_KEY or without ALLOWED_HOSTS,
HTTPS is required (redirect, HSTS, secure cookies, the proxy's X-Forwarded-Proto trusted), and
`manage.py check --deploy` is clean with the environment docs/security.md documents."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# docs/security.md, "Production settings": the least a production environment sets.
PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "keystone.example.com",
}


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    """Python `code` after django.setup(), in a process with config.settings and `env`
    (DEBUG, SECRET_KEY, ALLOWED_HOSTS only as given; SQLite under a scratch directory)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")
    }
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", LOG_LEVEL="ERROR", **env)
    script = f"import django\ndjango.setup()\n{code}"
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    code = f"from django.core.management import call_command\ncall_command(*{list(args)!r})"
    return run(code, **env)


@pytest.fixture
def scratch(tmp_path) -> dict[str, str]:
    return {"KEYSTONE_VAR_DIR": str(tmp_path)}


def test_debug_is_off_unless_set(scratch):
    result = run("from django.conf import settings; print(settings.DEBUG)", **PRODUCTION, **scratch)

    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize(
    "environment, reason",
    [
        ({"ALLOWED_HOSTS": "keystone.example.com"}, "SECRET_KEY"),
        (
            {
                "ALLOWED_HOSTS": "keystone.example.com",
                "SECRET_KEY": "keystone-insecure-development-key-change-me",
            },
            "SECRET_KEY",
        ),
        ({"SECRET_KEY": PRODUCTION["SECRET_KEY"]}, "ALLOWED_HOSTS"),
        ({"SECRET_KEY": PRODUCTION["SECRET_KEY"], "ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS"),
    ],
    ids=["no secret key", "the development key", "no allowed hosts", "blank allowed hosts"],
)
def test_without_debug_the_server_refuses_to_start_on_insecure_settings(
    scratch, environment, reason
):
    result = manage("check", **environment, **scratch)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert reason in result.stderr


def test_check_deploy_is_clean_with_the_documented_production_environment(scratch):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, **scratch)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_debug_still_starts_on_the_development_defaults(scratch):
    result = manage("check", DEBUG="1", **scratch)

    assert result.returncode == 0, result.stderr


HTTPS = """
from django.test import Client
client = Client(HTTP_HOST="keystone.example.com")
plain = client.get("/api/v1/events")
print(plain.status_code, plain.get("Location"))
print(client.get("/healthz").status_code)
proxied = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
print(proxied.status_code, proxied.get("Strict-Transport-Security"))
print(proxied.cookies["csrftoken"]["secure"])
"""


def test_production_requires_https_behind_the_proxy_and_sends_hsts(scratch):
    result = run(HTTPS, **PRODUCTION, **scratch)

    redirect, health, proxied, secure_cookie = result.stdout.splitlines()
    assert redirect == "301 https://keystone.example.com/api/v1/events", result.stderr
    assert health == "200"  # load balancers probe over plain HTTP
    assert proxied == "200 max-age=31536000; includeSubDomains; preload"
    assert secure_cookie == "True"
