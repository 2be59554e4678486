"""GET /metrics: Prometheus counters and histograms for requests, latency and errors.

One worker (the default, one per Pod): plain Python counters, read by a custom
collector only when scraped. prometheus_client's own metric objects take a
lock per update and cost about a fifth of the server's time per request.

Several workers (`--worker_count`): prometheus_client's multiprocess mode, which
sums every worker's numbers whichever worker answers the scrape; it needs
PROMETHEUS_MULTIPROC_DIR set before prometheus_client is imported (cli.py does).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Scoring latencies here are sub-millisecond to seconds.
BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
BUCKETS += (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = ("kaci_requests", "HTTP requests answered, by route and status code.")
ERRORS = ("kaci_errors", "Error responses (status >= 400), by route and status code.")
LATENCY = (
    "kaci_request_duration_seconds",
    "Time from a complete request to its response, by route.",
)
RUN = ("kaci_run_duration_seconds", "Time spent in the score script's run().")
# What Azure's AKS autoscaler scales on (busy replicas): counted while the front-end limits
# are on (KACI_MAX_CONCURRENT_REQUESTS / KACI_MAX_REQUEST_WAIT_MS, kaci_runtime.limits).
IN_FLIGHT = (
    "kaci_requests_in_flight",
    "Scoring requests being run or waiting for a run() slot in this container.",
)
QUEUE_TIMEOUTS = (
    "kaci_queue_timeouts",
    "Scoring requests answered 503 after waiting longer than KACI_MAX_REQUEST_WAIT_MS.",
)
SCORING_TIMEOUTS = (
    "kaci_scoring_timeouts",
    "Scoring requests answered with the scoring timeout (SCORING_TIMEOUT_MS).",
)

MODEL_DATA_DROPPED = (
    "kaci_model_data_dropped",
    "Captured model data records lost: the capture queue was full or the sink failed.",
)


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: the first bucket whose bound is >= the value (Prometheus' "le").
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.count += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


class _Collector(Collector):
    def __init__(self, metrics: LocalMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        requests = CounterMetricFamily(*REQUESTS, labels=["route", "code"])
        errors = CounterMetricFamily(*ERRORS, labels=["route", "code"])
        for (route, code), n in sorted(m.requests.items()):
            requests.add_metric([route, str(code)], n)
            if code >= 400:
                errors.add_metric([route, str(code)], n)
        latency = HistogramMetricFamily(*LATENCY, labels=["route"])
        for route, hist in sorted(m.latency.items()):
            latency.add_metric([route], hist.buckets(), hist.total)
        run = HistogramMetricFamily(*RUN)
        run.add_metric([], m.run.buckets(), m.run.total)
        in_flight = GaugeMetricFamily(*IN_FLIGHT, value=m.in_flight)
        queue_timeouts = CounterMetricFamily(*QUEUE_TIMEOUTS, value=m.queue_timeouts)
        scoring_timeouts = CounterMetricFamily(*SCORING_TIMEOUTS, value=m.scoring_timeouts)
        dropped = CounterMetricFamily(*MODEL_DATA_DROPPED, value=m.model_data_dropped)
        yield from (requests, errors, latency, run, in_flight, queue_timeouts, scoring_timeouts)
        yield dropped


class LocalMetrics:
    """One process's metrics in plain counters."""

    multiprocess = False

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.run = _Histogram()
        self.in_flight = 0
        self.queue_timeouts = 0
        self.scoring_timeouts = 0
        self.model_data_dropped = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def observe(self, route: str, code: int, seconds: float) -> None:
        key = (route, code)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(route)
        if hist is None:
            hist = self.latency[route] = _Histogram()
        hist.observe(seconds)

    def observe_run(self, seconds: float) -> None:
        self.run.observe(seconds)

    def add_in_flight(self, delta: int) -> None:
        self.in_flight += delta

    def queue_timeout(self) -> None:
        self.queue_timeouts += 1

    def scoring_timeout(self) -> None:
        self.scoring_timeouts += 1

    def capture_dropped(self, n: int) -> None:
        self.model_data_dropped += n

    def render(self) -> bytes:
        return generate_latest(self.registry)


class SharedMetrics:
    """Metrics summed over worker processes (prometheus_client multiprocess mode)."""

    multiprocess = True

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(*REQUESTS, ["route", "code"], registry=self.registry)
        self.errors = Counter(*ERRORS, ["route", "code"], registry=self.registry)
        self.latency = Histogram(*LATENCY, ["route"], buckets=BUCKETS, registry=self.registry)
        self.run_latency = Histogram(*RUN, buckets=BUCKETS, registry=self.registry)
        # livesum: the workers' values added up, a dead worker's left out.
        self.in_flight = Gauge(*IN_FLIGHT, registry=self.registry, multiprocess_mode="livesum")
        self.queue_timeouts = Counter(*QUEUE_TIMEOUTS, registry=self.registry)
        self.scoring_timeouts = Counter(*SCORING_TIMEOUTS, registry=self.registry)
        self.model_data_dropped = Counter(*MODEL_DATA_DROPPED, registry=self.registry)
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

    def add_in_flight(self, delta: int) -> None:
        self.in_flight.inc(delta)

    def queue_timeout(self) -> None:
        self.queue_timeouts.inc()

    def scoring_timeout(self) -> None:
        self.scoring_timeouts.inc()

    def capture_dropped(self, n: int) -> None:
        self.model_data_dropped.inc(n)

    def render(self) -> bytes:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def Metrics() -> LocalMetrics | SharedMetrics:  # noqa: N802 - used like a class
    """The metrics store for this process: shared when workers share the port."""
    return SharedMetrics() if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else LocalMetrics()
