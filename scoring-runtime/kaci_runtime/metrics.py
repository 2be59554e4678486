"""GET /metrics: Prometheus counters and histograms for requests, latency and errors.

With several workers (`--worker_count`), prometheus_client's multiprocess mode
sums every worker's numbers, whichever worker answers the scrape; it needs
PROMETHEUS_MULTIPROC_DIR set before prometheus_client is imported (cli.py does).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# Scoring latencies here are sub-millisecond to seconds.
BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
BUCKETS += (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # Metrics live in their own registry: nothing the user's code registers leaks in.
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "kaci_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "kaci_errors",
            "Error responses (status >= 400), by route and status code.",
            ["route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kaci_request_duration_seconds",
            "Time from a complete request to its response, by route.",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.run_latency = Histogram(
            "kaci_run_duration_seconds",
            "Time spent in the score script's run().",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], tuple[Counter, Counter | None, Histogram]] = {}

    def observe(self, route: str, code: int, seconds: float) -> None:
        children = self._children.get((route, code))
        if children is None:
            children = (
                self.requests.labels(route, str(code)),
                self.errors.labels(route, str(code)) if code >= 400 else None,
                self.latency.labels(route),
            )
            self._children[(route, code)] = children
        requests, errors, latency = children
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def observe_run(self, seconds: float) -> None:
        self.run_latency.observe(seconds)

    def render(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
