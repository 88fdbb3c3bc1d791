"""The counters and histograms Keystone keeps where things happen (Prometheus, `/metrics`).

One module holds every instrument, so a name, its labels and its buckets are declared once;
services call the `record_*` functions below, which cost a few in-memory additions — nothing
here touches the database or takes a lock shared between requests. Figures read from the
database when Prometheus scrapes (queue depths, lags, dead letters) are not here: they are
computed at scrape time by `config.metrics`.

Several processes (gunicorn workers, Celery workers, `load_source`) each count their own;
with `PROMETHEUS_MULTIPROC_DIR` set in their environment (before start), prometheus-client
keeps each process's values in a file of that directory and `/metrics` adds them up
(docs/operations.md).

Labels stay bounded: source system codes, entity types, outcomes and event types are small
fixed sets; no record key, golden ID or correlation ID is ever a label.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)

INGEST_RECORDS = Counter(
    "keystone_ingest_records",
    "Records received, by source system, entity type and outcome (loaded, updated, "
    "unchanged, stale, deleted, rejected).",
    ["system", "entity", "outcome"],
)
INGEST_SECONDS = Histogram(
    "keystone_ingest_chunk_seconds",
    "Time to validate, normalize and commit one ingest chunk (an API write, or up to "
    "KEYSTONE_INGEST_CHUNK_SIZE rows of a file).",
    ["system", "entity"],
    buckets=LATENCY_BUCKETS,
)
MATCH_SECONDS = Histogram(
    "keystone_match_seconds",
    "Time to match: one match request (incremental) or one run (batch).",
    ["entity", "mode"],
    buckets=LATENCY_BUCKETS,
)
INGEST_TO_RESOLVED = Histogram(
    "keystone_ingest_to_resolved_seconds",
    "From the commit of an ingest chunk to the end of matching its records (linked, sent "
    "to review, or left on their own).",
    ["system", "entity"],
    buckets=LAG_BUCKETS,
)
MATCH_RECORDS = Counter(
    "keystone_match_records",
    "Records matched, by entity type and mode (incremental, batch).",
    ["entity", "mode"],
)
AUTO_LINKS = Counter(
    "keystone_match_auto_links",
    "Golden records merged automatically by matching, by entity type and mode.",
    ["entity", "mode"],
)
SENT_TO_REVIEW = Counter(
    "keystone_match_sent_to_review",
    "Pairs of golden records matching sent to the review queue, by entity type and mode.",
    ["entity", "mode"],
)
EVENTS_WRITTEN = Counter(
    "keystone_events_written",
    "Outbox events committed, by event type.",
    ["type"],
)
DELIVERIES = Counter(
    "keystone_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, failed: retried later, dead: "
    "dead-lettered).",
    ["outcome"],
)

INCREMENTAL, BATCH = "incremental", "batch"


def record_ingest(*, system: str, entity: str, counts: Mapping[str, int], seconds: float) -> None:
    for outcome, count in counts.items():
        if count:
            INGEST_RECORDS.labels(system, entity, outcome).inc(count)
    INGEST_SECONDS.labels(system, entity).observe(seconds)


def record_matching(
    *, entity: str, mode: str, records: int, merges: int, sent_to_review: int, seconds: float
) -> None:
    MATCH_SECONDS.labels(entity, mode).observe(seconds)
    MATCH_RECORDS.labels(entity, mode).inc(records)
    AUTO_LINKS.labels(entity, mode).inc(merges)
    SENT_TO_REVIEW.labels(entity, mode).inc(sent_to_review)


def record_resolved(*, system: str, entity: str, seconds: float) -> None:
    INGEST_TO_RESOLVED.labels(system, entity).observe(max(seconds, 0.0))


def record_events(counts: Mapping[str, int]) -> None:
    for event_type, count in counts.items():
        EVENTS_WRITTEN.labels(event_type).inc(count)


def record_delivery(*, outcome: str) -> None:
    DELIVERIES.labels(outcome).inc()
