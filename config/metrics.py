"""`/metrics`: Prometheus text format — the counters services keep (`mdm.metrics`) and the
business figures read from the database when Prometheus scrapes.

Scrape-time figures (`KeystoneCollector`) come from the selectors of each app, each a
grouped query over an index or a small table (what waits to be matched, open candidates,
open rejections, subscriptions, dead letters) plus one LLEN per Celery queue: the cost of a
scrape is bounded by the number of source systems, entity types and subscriptions, never by
the number of records. Nothing is computed per API request.

Protection: `Authorization: Bearer <METRICS_TOKEN>`, or a peer address inside
METRICS_ALLOWED_NETWORKS (config/settings.py); else 401 (a token is configured: send it) or
403. With PROMETHEUS_MULTIPROC_DIR the counters of every process on the machine are added up
(prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.selectors import event_high_water_mark, subscription_lags
from matching.selectors import last_finished_runs, review_queue_depth
from mdm.selectors import open_rejections_by_source, pending_matching

logger = logging.getLogger(__name__)


def _age(moment, now) -> float:
    return max((now - moment).total_seconds(), 0.0) if moment is not None else 0.0


def celery_queue_lengths() -> dict[str, int]:
    """Messages waiting in each queue Keystone's tasks go to (Redis broker only; the
    priority sub-queues kombu keeps beside a queue are added in)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return {}
    import redis

    queues = ["celery", settings.KEYSTONE_WEBHOOK_QUEUE]
    if settings.KEYSTONE_MATCH_QUEUE:
        queues.append(settings.KEYSTONE_MATCH_QUEUE)
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        lengths = {}
        for queue in dict.fromkeys(queues):
            keys = [queue, *(f"{queue}\x06\x16{priority}" for priority in range(1, 10))]
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.llen(key)
            lengths[queue] = sum(pipe.execute())
        return lengths
    finally:
        client.close()


class KeystoneCollector(Collector):
    """Business figures read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        try:
            figures = list(self._database_figures(timezone.now()))
        except DatabaseError:
            # A database that is down must not take the scrape with it: the process counters
            # and the queue lengths still answer, and keystone_database_up says what is missing.
            logger.warning(
                "metrics: database figures not read (database unreachable)", exc_info=True
            )
            figures = []
        yield GaugeMetricFamily(
            "keystone_database_up",
            "1 when this scrape read the database figures, 0 when the database could not be "
            "read (those figures are missing from the scrape).",
            value=1 if figures else 0,
        )
        yield from figures
        yield self._queue_lengths()

    def _database_figures(self, now) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "keystone_match_waiting_records",
            "Source records waiting to be matched (match requests not done yet).",
            labels=["system", "entity"],
        )
        waiting_age = GaugeMetricFamily(
            "keystone_match_waiting_oldest_seconds",
            "Age of the oldest match request waiting: how long ingested records have waited "
            "to be resolved.",
            labels=["system", "entity"],
        )
        for pending in pending_matching():
            labels = [pending.source_system, pending.entity_type]
            waiting.add_metric(labels, pending.records)
            waiting_age.add_metric(labels, _age(pending.oldest, now))
        yield waiting
        yield waiting_age

        queue = GaugeMetricFamily(
            "keystone_review_queue_open", "Open match candidates.", labels=["entity"]
        )
        queue_age = GaugeMetricFamily(
            "keystone_review_queue_oldest_seconds",
            "Age of the oldest open match candidate.",
            labels=["entity"],
        )
        for depth in review_queue_depth():
            queue.add_metric([depth.entity_type], depth.open)
            queue_age.add_metric([depth.entity_type], _age(depth.oldest, now))
        yield queue
        yield queue_age

        auto_rate = GaugeMetricFamily(
            "keystone_match_run_auto_link_rate",
            "Last finished batch run: golden records merged per record matched.",
            labels=["entity"],
        )
        review_rate = GaugeMetricFamily(
            "keystone_match_run_review_rate",
            "Last finished batch run: pairs sent to review per record matched.",
            labels=["entity"],
        )
        run_records = GaugeMetricFamily(
            "keystone_match_run_records",
            "Last finished batch run: records matched.",
            labels=["entity"],
        )
        for run in last_finished_runs():
            records = max(run.records, 1)
            auto_rate.add_metric([run.entity_type], run.merges / records)
            review_rate.add_metric([run.entity_type], run.sent_to_review / records)
            run_records.add_metric([run.entity_type], run.records)
        yield auto_rate
        yield review_rate
        yield run_records

        rejections = GaugeMetricFamily(
            "keystone_rejections_open",
            "Rejected records waiting for an operator (replay or dismiss).",
            labels=["system", "entity"],
        )
        for group in open_rejections_by_source():
            rejections.add_metric([group.source_system, group.entity_type], group.count)
        yield rejections

        yield GaugeMetricFamily(
            "keystone_events_high_water_mark",
            "The last event sequence number every reader may serve.",
            value=event_high_water_mark(),
        )

        behind = GaugeMetricFamily(
            "keystone_subscription_events_behind",
            "Events a webhook subscription wants and has not received yet.",
            labels=["subscription", "name"],
        )
        seconds = GaugeMetricFamily(
            "keystone_subscription_seconds_behind",
            "Age of the oldest event a webhook subscription has not received yet.",
            labels=["subscription", "name"],
        )
        dead = GaugeMetricFamily(
            "keystone_webhook_dead_letters",
            "Deliveries dead-lettered after the last attempt (replayable).",
            labels=["subscription", "name"],
        )
        for lag in subscription_lags(now=now):
            labels = [str(lag.subscription.pk), lag.subscription.name]
            behind.add_metric(labels, lag.events_behind)
            seconds.add_metric(labels, lag.seconds_behind)
            dead.add_metric(labels, lag.dead_letters)
        yield behind
        yield seconds
        yield dead

    def _queue_lengths(self) -> Metric:
        lengths = GaugeMetricFamily(
            "keystone_celery_queue_length",
            "Task messages waiting in a Celery queue (Redis broker).",
            labels=["queue"],
        )
        try:
            for name, length in celery_queue_lengths().items():
                lengths.add_metric([name], length)
        except Exception:  # noqa: BLE001 - a broker that is down hides this figure only
            logger.warning("Celery queue lengths not read (broker unreachable)", exc_info=True)
        return lengths


def registry() -> CollectorRegistry:
    """What a scrape reads: this process's counters, or every process's (multiprocess mode),
    and the database figures."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        scraped = CollectorRegistry()
        MultiProcessCollector(scraped, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        scraped = CollectorRegistry()
        scraped.register(_ProcessCounters())
    scraped.register(KeystoneCollector())
    return scraped


class _ProcessCounters(Collector):
    """This process's instruments (the default registry: `mdm.metrics` and the process and
    platform collectors prometheus-client adds)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def allowed(request: HttpRequest) -> int | None:
    """None when the request may read the metrics, else the status to answer (401, 403)."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        if hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode()):
            return None
        return 401
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        peer = None
    if peer is not None and any(peer in network for network in settings.METRICS_ALLOWED_NETWORKS):
        return None
    return 401 if token else 403


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    refused = allowed(request)
    if refused == 401:
        response = HttpResponse("metrics: send Authorization: Bearer <METRICS_TOKEN>\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if refused == 403:
        return HttpResponse(
            "metrics: this address is not in METRICS_ALLOWED_NETWORKS\n", status=403
        )
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
