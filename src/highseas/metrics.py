"""Prometheus metrics: every family the service exports, and their exposition.

Counters and histograms are per process (in prometheus_client's default registry), so each
API and worker process is scraped on its own and PromQL sums them. The jobs-by-state gauge is
the exception: it is read from the shared jobs table at scrape time (``exposition``), so every
API process reports the same cluster-wide numbers. docs/observability.md lists the families
with example queries.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum

from prometheus_client import (
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# Each counter and histogram would also export a *_created series, which PromQL has no use for.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Requests are answered in milliseconds; the goal is a p99 accept latency under 50 ms.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Jobs wait and run from milliseconds (a callback) to many minutes (a large import, a backlog).
_JOB_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    *(30, 60, 120, 300, 600, 1800, 3600),
)

# What the route label says when no route matched (a 404, or a body refused before routing):
# raw paths would give every mistyped or probing URL its own series.
UNMATCHED_ROUTE = "unmatched"
# Any token is a method to the server; only these get a series of their own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUEST_SECONDS = Histogram(
    "highseas_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response.",
    ["method", "route", "status_class"],
    buckets=_REQUEST_BUCKETS,
)
JOB_WAIT_SECONDS = Histogram(
    "highseas_job_wait_seconds",
    "Time from when a job was due (enqueued, or its retry's run_at) until a worker claimed it.",
    ["queue", "kind"],
    buckets=_JOB_BUCKETS,
)
JOB_RUN_SECONDS = Histogram(
    "highseas_job_run_seconds",
    "Time one attempt of a job ran, until its outcome was recorded.",
    ["queue", "kind", "outcome"],
    buckets=_JOB_BUCKETS,
)
CALLBACK_ATTEMPTS = Counter(
    "highseas_callback_attempts",
    "Callback delivery attempts, by outcome.",
    ["outcome"],
)
IMPORT_ROWS = Counter(
    "highseas_import_rows",
    "Customers matched by customer_to_task imports, committed chunk by chunk: imported into "
    "the task, or already in it.",
    ["result"],
)
IMPORT_CHUNK_SECONDS = Histogram(
    "highseas_import_chunk_seconds",
    "Time one customer_to_task chunk took, its commit included.",
    buckets=_JOB_BUCKETS,
)
POOL_ROWS = Counter(
    "highseas_pool_rows",
    "Rows of async_customer batches stored into the pool, by result.",
    ["result"],
)


class JobOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    RETRIED = "retried"
    FAILED = "failed"
    # Another worker took the job over (this one stalled past its lease): its work rolled back.
    LEASE_LOST = "lease_lost"


class CallbackOutcome(StrEnum):
    DELIVERED = "delivered"
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    NETWORK_ERROR = "network_error"
    BLOCKED = "blocked"
    # Never sent: no URL configured any more, or a secret that no longer unseals.
    UNSENT = "unsent"


class ImportRow(StrEnum):
    IMPORTED = "imported"
    DUPLICATE = "duplicate"


class PoolRow(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


# Every series of a counter with a fixed label set exists from the start, at 0: an alert on
# an outcome that has not happened yet (rate(…{outcome="timeout"})) finds a series to read.
for _outcome in CallbackOutcome:
    CALLBACK_ATTEMPTS.labels(_outcome)
for _import_row in ImportRow:
    IMPORT_ROWS.labels(_import_row)
for _pool_row in PoolRow:
    POOL_ROWS.labels(_pool_row)


def observe_request(method: str, route: object, status: int, seconds: float) -> None:
    """Time one request under its route's path template (``route`` is what the router matched,
    or None)."""
    template = getattr(route, "path", None)
    HTTP_REQUEST_SECONDS.labels(
        method if method in _METHODS else "other",
        template if isinstance(template, str) else UNMATCHED_ROUTE,
        f"{status // 100}xx",
    ).observe(seconds)


def exposition(job_counts: Mapping[tuple[str, str], int], accept: str) -> tuple[bytes, str]:
    """This process's metrics and the jobs gauge, from ``job_counts`` by (queue, state), and
    their content type: in the format the scraper's ``Accept`` header asks for (Prometheus
    text, or OpenMetrics), as a worker's metrics server answers."""
    encode, content_type = choose_encoder(accept)
    return encode(_WithJobCounts(job_counts)), content_type


def serve(host: str, port: int) -> None:
    """This process's metrics at http://host:port/ from a daemon thread (worker processes,
    which have no HTTP server of their own)."""
    start_http_server(port, addr=host)


class _WithJobCounts(Collector):
    def __init__(self, job_counts: Mapping[tuple[str, str], int]) -> None:
        self._job_counts = job_counts

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        family = GaugeMetricFamily(
            "highseas_jobs",
            "Jobs in the jobs table (all processes), by queue and state.",
            labels=["queue", "state"],
        )
        for (queue, state), count in sorted(self._job_counts.items()):
            family.add_metric([queue, state], count)
        yield family
