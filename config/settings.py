"""Keystone settings, read from the environment.

Embedded default (nothing set): SQLite under var/, Celery tasks run eagerly in-process.
Production: DATABASE_URL (PostgreSQL) and REDIS_URL (Celery broker and result backend).
"""

import ipaddress
import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.clients import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KEYSTONE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def env_json(name: str, default):
    raw = os.environ.get(name, "").strip()
    return json.loads(raw) if raw else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Development (DEBUG=1: `make demo`, the test suite) runs on a public key and local hosts;
# with DEBUG off (the default) the process refuses to start without a real SECRET_KEY and
# ALLOWED_HOSTS, and HTTPS is required (see below and docs/security.md).
DEBUG = env_bool("DEBUG", False)
DEVELOPMENT_SECRET_KEY = "keystone-insecure-development-key-change-me"
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY if DEBUG else "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
if not DEBUG and SECRET_KEY in ("", DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "DEBUG is off and SECRET_KEY is not set (or is the public development key): set "
        "SECRET_KEY to a long random value (or DEBUG=1 for development). See docs/security.md."
    )
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DEBUG is off and ALLOWED_HOSTS is empty: set ALLOWED_HOSTS to the host names Keystone "
        "is served under, comma-separated (or DEBUG=1 for development). See docs/security.md."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# HTTPS, on unless DEBUG (each can be set on its own). Production runs behind a proxy that
# ends TLS and says so in X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER names the header; empty:
# trust none). Health checks are exempt from the redirect: load balancers probe over HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
_PROXY_SSL_HEADER = os.environ.get("SECURE_PROXY_SSL_HEADER", "" if DEBUG else "X-Forwarded-Proto")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _PROXY_SSL_HEADER.strip().upper().replace("-", "_"), "https")
    if _PROXY_SSL_HEADER.strip()
    else None
)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
# A steward's session ends after a working day (Django's default is two weeks).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "mdm",
    "matching",
    "stewardship",
    "api",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "mdm.middleware.CorrelationIdMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'keystone.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while a load writes; wait on locks instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # The ORM binds client-side and never prepares. The API's hot lookups run on a
    # server-binding cursor that prepares them on first use (api.selectors.prepared_cursor);
    # Django disables preparing unless prepare_threshold is set. Set
    # KEYSTONE_DB_PREPARED_STATEMENTS=0 behind a transaction-pooling PgBouncer older than 1.21.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env_bool("KEYSTONE_DB_PREPARED_STATEMENTS", True) else None
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL or env_bool("CELERY_EAGER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
# Sending a task gives up fast when the broker is down (one retry, a 2 s connect timeout)
# instead of holding the sender ~6 s per message: what must happen is a row (match requests,
# deliveries) that a periodic sweep sends again, so a sender only needs to know it failed.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
    "socket_connect_timeout": 2,
}
CELERY_ACCEPT_CONTENT = ["json"]
# Safety net for long-lived workers (prefork pool): a child process whose resident memory is
# above this many KiB after a task is replaced (a batch run's peak is given back to the system
# that way), and every child is replaced after this many tasks. 0 turns either off.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = (
    env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 1_048_576) or None
)
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 10_000) or None

# The shared cache: API throttling counters, the tokens version that makes a revocation
# effective at once in every process (api.authentication, with Redis), the events mark. Redis when
# REDIS_URL is set (every process on every machine); else files under var/cache, which every
# process on this machine shares (embedded mode: the server and management commands). Keys
# start with KEYSTONE_CACHE_KEY_PREFIX: one per deployment sharing a Redis database.
KEYSTONE_CACHE_KEY_PREFIX = os.environ.get("KEYSTONE_CACHE_KEY_PREFIX", "keystone")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": KEYSTONE_CACHE_KEY_PREFIX,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "KEY_PREFIX": KEYSTONE_CACHE_KEY_PREFIX,
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }

# --- Keystone -----------------------------------------------------------------------------
# Every Keystone setting is read here, typed, from the environment; code reads settings.X.
# Rows per transaction when loading files: bounded memory, each chunk all-or-nothing.
KEYSTONE_INGEST_CHUNK_SIZE = env_int("KEYSTONE_INGEST_CHUNK_SIZE", 2000)
# A record nested deeper than this (lists and objects in its values) or larger than this as
# JSON is rejected on its own: bounded memory and no recursion limit hit while storing it.
KEYSTONE_INGEST_MAX_DEPTH = env_int("KEYSTONE_INGEST_MAX_DEPTH", 32)
KEYSTONE_INGEST_MAX_RECORD_BYTES = env_int("KEYSTONE_INGEST_MAX_RECORD_BYTES", 256 * 1024)
# Hourly ingest volumes (the Integrations page's charts) older than this many days are deleted
# by the beat task mdm.tasks.prune_ingest_volumes.
KEYSTONE_INGEST_VOLUME_DAYS = env_int("KEYSTONE_INGEST_VOLUME_DAYS", 35)
# Applying a batch run's merges (matching.apply): processes (default: up to 2, one per CPU),
# merges per transaction, and the fewest batches worth forking for.
KEYSTONE_MATCH_APPLY_WORKERS = env_int("KEYSTONE_MATCH_APPLY_WORKERS", min(2, os.cpu_count() or 1))
KEYSTONE_MATCH_APPLY_BATCH = env_int("KEYSTONE_MATCH_APPLY_BATCH", 1000)
KEYSTONE_MATCH_APPLY_MIN_BATCHES = env_int("KEYSTONE_MATCH_APPLY_MIN_BATCHES", 8)
# Matching (matching/): DuckDB resources, u sampling, steward labels, key cap, thresholds.
KEYSTONE_MATCH_DUCKDB_THREADS = env_int("KEYSTONE_MATCH_DUCKDB_THREADS", 2)
KEYSTONE_MATCH_DUCKDB_MEMORY = os.environ.get("KEYSTONE_MATCH_DUCKDB_MEMORY", "2GB")
# Random pairs sampled to estimate u (at most; fewer when the data has fewer pairs).
KEYSTONE_MATCH_U_MAX_PAIRS = env_float("KEYSTONE_MATCH_U_MAX_PAIRS", 5e6)
# Steward "match" pairs needed before they refine m at training.
KEYSTONE_MATCH_MIN_LABELS = env_int("KEYSTONE_MATCH_MIN_LABELS", 10)
# Records read per blocking-key value by incremental matching and the probe.
KEYSTONE_MATCH_KEY_CAP = env_int("KEYSTONE_MATCH_KEY_CAP", 1000)
# Per-entity threshold overrides, JSON: {"customer": {"auto_link": 0.97, "review": 0.6}}.
KEYSTONE_MATCH_THRESHOLDS: dict[str, dict[str, float]] = env_json("KEYSTONE_MATCH_THRESHOLDS", {})
# Celery queue for incremental matching tasks (empty: the default queue).
KEYSTONE_MATCH_QUEUE = os.environ.get("KEYSTONE_MATCH_QUEUE") or None
# Match requests (mdm.models.MatchRequest, written with each ingest): how long a worker holds
# one it claimed before another may take it (a dead worker's), and how often the sweep sends
# again the requests no task picked up for that long (a lost message, a broker outage).
KEYSTONE_MATCH_REQUEST_LEASE_SECONDS = env_float("KEYSTONE_MATCH_REQUEST_LEASE_SECONDS", 600)
KEYSTONE_MATCH_REQUEST_SWEEP_SECONDS = env_float("KEYSTONE_MATCH_REQUEST_SWEEP_SECONDS", 30)
# Share of auto-links sampled for the stewards' accuracy check (stewardship dashboard).
KEYSTONE_ACCURACY_SAMPLE_RATE = env_float("KEYSTONE_ACCURACY_SAMPLE_RATE", 0.01)
# Teamwork on the review queue: how long a steward's claim on a candidate holds (others skip
# it meanwhile), and the most candidates one steward may decide in bulk within the window
# without a second steward's approval (small runs add up: splitting does not avoid four eyes).
KEYSTONE_CLAIM_MINUTES = env_int("KEYSTONE_CLAIM_MINUTES", 15)
KEYSTONE_FOUR_EYES_BULK_SIZE = env_int("KEYSTONE_FOUR_EYES_BULK_SIZE", 25)
KEYSTONE_FOUR_EYES_WINDOW_MINUTES = env_int("KEYSTONE_FOUR_EYES_WINDOW_MINUTES", 60)
# Signing in (stewardship.sign_in): failed attempts per (username, address) before that pair
# is refused, and the minutes the refusal lasts after the last attempt.
KEYSTONE_LOGIN_MAX_FAILURES = env_int("KEYSTONE_LOGIN_MAX_FAILURES", 10)
KEYSTONE_LOGIN_LOCK_MINUTES = env_int("KEYSTONE_LOGIN_LOCK_MINUTES", 15)
AUTHENTICATION_BACKENDS = ["stewardship.sign_in.LimitedModelBackend"]

# --- Operations: logs and metrics (docs/operations.md) ------------------------------------
# LOG_FORMAT=json: one JSON object per line (time, level, logger, message, correlation_id,
# process, extra fields, exception) for a log pipeline; "plain" (default) for people. Every
# line carries the correlation ID of the request, file load or task it was written under.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT is {LOG_FORMAT!r}: set plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "config.logs.CorrelationFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["correlation"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # sqlglot (under Splink) logs every SQL dialect translation at INFO: a run of run_matching
    # printed a hundred "Applying array index offset" lines.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "sqlglot": {"level": "WARNING"}},
}
# Celery workers log through the configuration above when lines are JSON (Celery would
# otherwise install its own plain handler on the root logger).
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# /metrics (config/metrics.py) answers a request that has `Authorization: Bearer
# <METRICS_TOKEN>` or comes from an address in METRICS_ALLOWED_NETWORKS (comma-separated
# CIDRs, matched against the direct peer's address: REMOTE_ADDR); 401/403 otherwise. Neither
# set: nobody (in development: this machine).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
try:
    METRICS_ALLOWED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
        ipaddress.ip_network(cidr, strict=False)
        for cidr in env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128" if DEBUG else "")
    )
except ValueError as _error:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_error}") from _error
# The reverse proxies in front of Keystone (comma-separated CIDRs). A request from one of them
# is counted against its client's address, taken from X-Forwarded-For (config/clients.py), by
# the sign-in limit and the API's rate limit of unauthenticated callers. Empty (the default):
# the direct peer is the client and X-Forwarded-For is ignored.
try:
    KEYSTONE_TRUSTED_PROXIES = parse_networks(env_list("KEYSTONE_TRUSTED_PROXIES"))
except ValueError as _error:
    raise ImproperlyConfigured(f"KEYSTONE_TRUSTED_PROXIES: {_error}") from _error
# Several processes (gunicorn workers, Celery workers, load_source) count into files of this
# directory, and /metrics adds them up. Set it in every process's environment before start
# (prometheus-client reads it at import), the same directory for all of them on one machine,
# emptied before they start. Empty: each process counts alone (one-process servers, tests).
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")

# --- API (api/) -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer first: its WWW-Authenticate header makes DRF answer 401, not 403.
        "api.authentication.IntegrationTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.KeystoneAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PrincipalRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["api.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.negotiation.KeystoneContentNegotiation",
    # NDJSON only where a view takes it (batch ingest: api.views.SourceBatchView).
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.KeystoneAutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Keystone MDM API",
    "DESCRIPTION": "Distribution API v1: ingest, cross-references, golden records, events, "
    'webhooks. Errors always have the shape {"error": {code, message, fields, '
    "correlation_id}}.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "OAS_VERSION": "3.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatus": "api.models.DeliveryStatus",
        "LinkMethod": "mdm.models.LinkMethod",
        "ErrorCode": "api.errors.ERROR_CODES",
        "IngestOutcome": "mdm.services.ingest.OUTCOMES",
        "RejectionCode": "mdm.services.ingest.REJECTION_CODES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_contract_components",
    ],
    "APPEND_COMPONENTS": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
}
# Requests per principal (integration token or user) per fixed window ("N/s", "N/min",
# "N/h", "N/day"), counted in the shared cache so the limit holds across processes. "off":
# no throttling (benches). Batch endpoints take up to 10,000 records or 1,000 keys a request.
KEYSTONE_API_THROTTLE_RATE = os.environ.get("KEYSTONE_API_THROTTLE_RATE", "3000/min")
KEYSTONE_API_MAX_BATCH = 10_000
KEYSTONE_API_MAX_LOOKUP_KEYS = 1_000
KEYSTONE_API_MAX_BODY_BYTES = env_int("KEYSTONE_API_MAX_BODY_BYTES", 32 * 1024 * 1024)
# Any other body is one JSON object, parsed whole: a record (at most 256 KiB), 1,000 lookup
# keys (255 characters each, escaped: ~1.5 MB at worst), a probe, a subscription.
KEYSTONE_API_MAX_OBJECT_BYTES = env_int("KEYSTONE_API_MAX_OBJECT_BYTES", 2 * 1024 * 1024)
KEYSTONE_API_IDEMPOTENCY_HOURS = 24
# How long a token's last_used_at may lag (seconds): avoids a write on every request.
KEYSTONE_API_TOKEN_TOUCH_SECONDS = 60
# How long a process remembers a token it has verified (seconds; 0: never). A revocation or
# a change of scopes is effective at once regardless (api.authentication: tokens version).
KEYSTONE_API_TOKEN_CACHE_SECONDS = env_float("KEYSTONE_API_TOKEN_CACHE_SECONDS", 60)
# Where the tokens version lives without Redis (with REDIS_URL: the shared cache).
KEYSTONE_TOKENS_VERSION_FILE = None if REDIS_URL else VAR_DIR / "tokens-version"
# Webhooks (api/webhooks.py, api/outbound.py). Their tasks run on a queue of their own, so a
# backlog of matching never holds deliveries up: workers must consume it
# (`celery -A config worker -Q celery,webhooks`, or a worker of its own with `-Q webhooks`).
KEYSTONE_WEBHOOK_QUEUE = os.environ.get("KEYSTONE_WEBHOOK_QUEUE") or "webhooks"
# Wall-clock deadline of one delivery call (connect, TLS, send, answer), and the most bytes of
# an answer read (only its status line is kept).
KEYSTONE_WEBHOOK_TIMEOUT_SECONDS = env_float("KEYSTONE_WEBHOOK_TIMEOUT_SECONDS", 10)
KEYSTONE_WEBHOOK_MAX_RESPONSE_BYTES = env_int("KEYSTONE_WEBHOOK_MAX_RESPONSE_BYTES", 8192)
KEYSTONE_WEBHOOK_MAX_ATTEMPTS = env_int("KEYSTONE_WEBHOOK_MAX_ATTEMPTS", 8)
KEYSTONE_WEBHOOK_BACKOFF_SECONDS = env_float("KEYSTONE_WEBHOOK_BACKOFF_SECONDS", 30)
KEYSTONE_WEBHOOK_BACKOFF_MAX_SECONDS = 6 * 3600
# Loopback and private targets (127.0.0.1, 10/8, 192.168/16, …) are refused unless this is on:
# for development and tests only. Link-local (cloud metadata), multicast and reserved
# addresses are always refused.
KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS")
# Embedded mode (no broker, no beat): after each commit that wrote events, dispatch and
# deliver in process, so `make demo` delivers. Off with a broker (beat dispatches).
KEYSTONE_WEBHOOK_DISPATCH_ON_COMMIT = env_bool("KEYSTONE_WEBHOOK_DISPATCH_ON_COMMIT", not REDIS_URL)
CELERY_TASK_ROUTES = {
    f"api.tasks.{name}": {"queue": KEYSTONE_WEBHOOK_QUEUE}
    for name in ("dispatch_events", "deliver_webhook", "retry_due_deliveries")
}
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "api-dispatch-webhooks": {"task": "api.tasks.dispatch_events", "schedule": 5.0},
    "api-retry-due-deliveries": {"task": "api.tasks.retry_due_deliveries", "schedule": 15.0},
    "api-purge-idempotency-keys": {"task": "api.tasks.purge_idempotency_keys", "schedule": 3600.0},
    "mdm-prune-ingest-volumes": {"task": "mdm.tasks.prune_ingest_volumes", "schedule": 3600.0},
    "matching-sweep-match-requests": {
        "task": "matching.tasks.sweep_match_requests",
        "schedule": KEYSTONE_MATCH_REQUEST_SWEEP_SECONDS,
        "options": {"queue": KEYSTONE_MATCH_QUEUE} if KEYSTONE_MATCH_QUEUE else {},
    },
}
# Bench only: exposes /bench/bare-xref/… (one indexed query, no DRF) for bench/api_lookup.py.
KEYSTONE_BENCH_VIEWS = env_bool("KEYSTONE_BENCH_VIEWS")
