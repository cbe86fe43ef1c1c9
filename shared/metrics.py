"""Prometheus metrics of every process, and the one call each hook makes.

Names follow Prometheus conventions (`notify_…_total` counters, `_seconds` in base units) and
every label is bounded: route templates (never raw paths), channels, provider *types* (never a
tenant's provider id), outcomes and reasons from fixed vocabularies, queue names. No tenant,
notification or user ids. Metric objects live in the default registry, as prometheus-client
intends: one set per process. With several API processes under uvicorn, `api/__main__.py`
sets `PROMETHEUS_MULTIPROC_DIR` and `/metrics` aggregates every process's files.

Hooks: the API's middleware (`observe_http`), the send pipeline (`count_created`), the
consumer (`observe_message`), dispatch (`observe_provider_call`), settle (`observe_verdict`),
the circuit breaker (`circuit_opened` / `circuit_closed`), the broker read (`set_queue_stats`);
fan-out and digest workers report with `count_fanout` / `count_digest`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

log = structlog.get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PROVIDER = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "notify_http_requests_total",
    "HTTP requests answered, by route template, method and status code",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "notify_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["route", "method"],
    buckets=_FAST,
)
NOTIFICATIONS_CREATED = Counter(
    "notify_notifications_created_total",
    "Notification records created (one per recipient and channel), by channel and source",
    ["channel", "source"],
)
MESSAGES_HANDLED = Counter(
    "notify_messages_handled_total",
    "Messages a consumer finished, by queue and handling (ack, requeue, reject)",
    ["queue", "handling"],
)
MESSAGE_DURATION = Histogram(
    "notify_message_handling_seconds",
    "Time a consumer's handler spent on one message, by queue",
    ["queue"],
    buckets=_PROVIDER,
)
PROVIDER_CALLS = Histogram(
    "notify_provider_call_duration_seconds",
    "Time of one delivery attempt's provider calls, by provider type and outcome",
    ["provider", "outcome"],
    buckets=_PROVIDER,
)
DELIVERIES = Counter(
    "notify_deliveries_total",
    "Notifications that reached a final status, by channel, provider type and result",
    ["channel", "provider", "result"],
)
RETRIES = Counter(
    "notify_retries_total",
    "Attempts rescheduled through the delay levels (a retry or a wait for a circuit)",
    ["channel"],
)
DEFERRALS = Counter(
    "notify_deferrals_total",
    "Notifications deferred before any attempt (quiet hours), by channel",
    ["channel"],
)
DEAD_LETTERS = Counter(
    "notify_dead_letters_total",
    "Notifications published to their channel's DLQ, by channel and final status",
    ["channel", "status"],
)
CIRCUITS_OPEN = Gauge(
    "notify_circuits_open",
    "Circuits not closed (open or half-open) in this worker process, by provider type",
    ["provider"],
    multiprocess_mode="livesum",
)
CIRCUIT_OPENINGS = Counter(
    "notify_circuit_openings_total",
    "Times a circuit opened (or re-opened after a failed probe), by provider type",
    ["provider"],
)
FANOUT_RECIPIENTS = Counter(
    "notify_fanout_recipients_total",
    "Recipients a fan-out expanded into notifications, by channel",
    ["channel"],
)
DIGEST_EVENTS = Counter(
    "notify_digest_events_total",
    "Digest events, by channel and stage (accumulated, flushed)",
    ["channel", "stage"],
)
QUEUE_MESSAGES = Gauge(
    "notify_queue_messages",
    "Messages ready in a queue, as the broker last reported (cached a few seconds)",
    ["queue", "kind"],
    multiprocess_mode="mostrecent",
)
QUEUE_CONSUMERS = Gauge(
    "notify_queue_consumers",
    "Consumers subscribed to a queue, as the broker last reported",
    ["queue", "kind"],
    multiprocess_mode="mostrecent",
)
RATE_LIMITED = Counter(
    "notify_rate_limited_total",
    "Requests refused with 429 because the key's budget was spent",
)


def observe_http(*, route: str, method: str, status: int, seconds: float) -> None:
    """One answered request."""
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_DURATION.labels(route, method).observe(seconds)
    if status == 429:
        RATE_LIMITED.inc()


def count_created(records: Iterable[Any]) -> None:
    """Records just created (objects with `channel` and `source`)."""
    for record in records:
        NOTIFICATIONS_CREATED.labels(_value(record.channel), record.source or "unknown").inc()


def observe_message(*, queue: str, handling: str, seconds: float) -> None:
    """A consumer settled one message."""
    MESSAGES_HANDLED.labels(queue, handling).inc()
    MESSAGE_DURATION.labels(queue).observe(seconds)


def observe_provider_call(*, provider: str, outcome: str, seconds: float) -> None:
    """One attempt's provider calls ended with `outcome` (an Outcome name)."""
    PROVIDER_CALLS.labels(provider.lower(), outcome).observe(seconds)


def observe_verdict(
    *, channel: str, kind: str, status: str, provider: str | None, dead_letter: bool
) -> None:
    """A verdict was written: final (with its status), a deferral, or a retry / wait."""
    if kind == "final":
        DELIVERIES.labels(channel, (provider or "none").lower(), status).inc()
        if dead_letter:
            DEAD_LETTERS.labels(channel, status).inc()
    elif kind == "defer":
        DEFERRALS.labels(channel).inc()
    else:
        RETRIES.labels(channel).inc()


def circuit_opened(*, provider: str, was_open: bool) -> None:
    """A circuit opened; `was_open` when it was already counted as not closed."""
    CIRCUIT_OPENINGS.labels(provider.lower()).inc()
    if not was_open:
        CIRCUITS_OPEN.labels(provider.lower()).inc()


def circuit_closed(*, provider: str) -> None:
    """An open or half-open circuit closed."""
    CIRCUITS_OPEN.labels(provider.lower()).dec()


def count_fanout(*, channel: str, recipients: int) -> None:
    """A fan-out expanded `recipients` more recipients."""
    FANOUT_RECIPIENTS.labels(channel).inc(recipients)


def count_digest(*, channel: str, stage: str, events: int = 1) -> None:
    """Digest progress: events `accumulated`, or `flushed` into a notification."""
    DIGEST_EVENTS.labels(channel, stage).inc(events)


def set_queue_stats(stats: Iterable[tuple[str, str, int, int]]) -> None:
    """(queue, kind, messages, consumers) as just read from the broker."""
    for queue, kind, messages, consumers in stats:
        QUEUE_MESSAGES.labels(queue, kind).set(messages)
        QUEUE_CONSUMERS.labels(queue, kind).set(consumers)


def _value(channel: Any) -> str:
    return str(getattr(channel, "value", channel))


def exposition() -> bytes:
    """This process's metrics (every API process's, in multiprocess mode) as text."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class MetricsServer:
    """A worker's metrics endpoint: prometheus-client's HTTP server in a daemon thread."""

    def __init__(self, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: Any = None

    def start(self) -> bool:
        """Listen; False (logged) when the port is taken: delivery matters more than metrics."""
        if self.port == 0:
            return False
        try:
            self._server, _ = start_http_server(self.port, addr=self.host)
        except OSError as exc:
            log.error("metrics_port_unavailable", port=self.port, error=str(exc))
            return False
        log.info("metrics_serving", url=f"http://{self.host}:{self.port}/metrics")
        return True

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
