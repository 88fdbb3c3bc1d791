"""Shared by the bench scripts: which database a bench may touch, its maintenance, and the
production-like environment a bench runs Django in.

A bench only ever targets PostgreSQL on 127.0.0.1/localhost, and only a database whose name
contains "bench", so no run can drop a real database.
"""

from __future__ import annotations

import secrets
from urllib.parse import unquote, urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def production_like_environment() -> dict[str, str]:
    """DEBUG off, as in production (no per-query log kept in memory), with what production
    must set (a secret key, random per run; the hosts a bench calls); plain HTTP on 127.0.0.1
    (no HTTPS redirect, cookies not Secure) and API throttling off, so a bench measures the
    API rather than the limit; webhooks not dispatched in process, as with a broker."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "KEYSTONE_API_THROTTLE_RATE": "off",
        # Production has a broker and beat: webhooks are dispatched by tasks, not by every
        # commit of the bench's process (the embedded default without REDIS_URL).
        "KEYSTONE_WEBHOOK_DISPATCH_ON_COMMIT": "false",
    }


def bench_target(url: str) -> dict:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    name = unquote(parts.path.lstrip("/"))
    if parts.scheme not in ("postgres", "postgresql") or host not in LOCAL_HOSTS:
        raise SystemExit("only postgres:// on 127.0.0.1 or localhost")
    if "bench" not in name:
        raise SystemExit(f"refusing database {name!r}: its name must contain 'bench'")
    return {
        "name": name,
        "host": host,
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password) if parts.password else None,
    }


def maintenance(target: dict, statement: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=target["host"],
        port=target["port"],
        user=target["user"],
        password=target["password"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    ) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(target["name"])))
