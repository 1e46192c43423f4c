"""Prometheus instruments, one registry per app so several apps can share a process."""

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST

# Route templates, never raw paths, keep label cardinality bounded.
UNMATCHED_ROUTE = "<unmatched>"


class Metrics:
    """Every instrument the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template and status.",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.dependency_failures = Counter(
            "dependency_failures_total",
            "Failed calls to a backing service, by dependency and operation.",
            ["dependency", "operation"],
            registry=self.registry,
        )

        self.cache_hits = Counter(
            "cache_hits_total", "Cache hits by cache name.", ["cache"], registry=self.registry
        )
        self.cache_misses = Counter(
            "cache_misses_total", "Cache misses by cache name.", ["cache"], registry=self.registry
        )
        self.cache_coalesced = Counter(
            "cache_coalesced_total",
            "Cache misses that waited for a concurrent computation of the same value.",
            ["cache"],
            registry=self.registry,
        )
        self.cache_oversized = Counter(
            "cache_oversized_total",
            "Values served but not cached: over CACHE_MAX_VALUE_BYTES.",
            ["cache"],
            registry=self.registry,
        )
        self.cache_errors = Counter(
            "cache_errors_total",
            "Cache backend errors (served from the source instead).",
            ["cache"],
            registry=self.registry,
        )
        self.rate_limit_rejections = Counter(
            "rate_limit_rejections_total",
            "Requests refused with 429, by limit name.",
            ["limit"],
            registry=self.registry,
        )
        self.rate_limit_local = Counter(
            "rate_limit_local_hits_total",
            "Rate-limit hits counted per process because Redis was absent or failing.",
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "webhook_events_total",
            "Stripe webhook deliveries by event type and outcome.",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.redis_degraded = Gauge(
            "redis_degraded",
            "1 while a component bypasses Redis after failures.",
            ["component"],
            registry=self.registry,
        )

        self.jobs = Counter(
            "generation_jobs_total",
            "Generation jobs by kind and outcome (accepted, succeeded, failed, canceled).",
            ["kind", "status"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "generation_job_duration_seconds",
            "From start to end of a generation job, by kind and outcome.",
            ["kind", "status"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.job_queue_depth = Gauge(
            "generation_jobs_queued",
            "Generation jobs waiting for a runner (read from MongoDB every few seconds).",
            registry=self.registry,
        )
        self.sse_connections = Gauge(
            "sse_connections_active",
            "Open job event streams in this process.",
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled children are looked up once per (method, route, status): `labels()`
        # takes a lock and builds a key on every call.
        children = self._request_children.get((method, route, status))
        if children is None:
            labels = (method, route, str(status))
            children = self.requests.labels(*labels), self.latency.labels(*labels)
            self._request_children[method, route, status] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
