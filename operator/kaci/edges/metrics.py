"""The operator's own Prometheus metrics: what it did, how long it took, what waits.

A platform team asks on day two how many deploys failed, why, and how long builds
take. These answer it; the chart's dashboard reads them. They live in a registry of
their own (not prometheus_client's process-wide one), which `python -m kaci.operator`
serves on KACI_METRICS_PORT.

Counters and histograms are bumped where things happen (a pass, a build, an API
error). What is a level, not an event (objects by state, the queue), is read when
Prometheus scrapes, from whatever the runner registers with `observe_levels`: so
it is never stale and costs nothing between scrapes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

# A pass is milliseconds; one that builds holds its thread for the build's length.
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
BUILD_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800)

RECONCILES = Counter(
    "kaci_operator_reconciles",
    "Passes over an object, by kind and outcome (done, wait, failed, soon, error).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "kaci_operator_reconcile_duration_seconds",
    "How long one pass over an object took, by kind.",
    ["kind"],
    buckets=PASS_BUCKETS,
    registry=REGISTRY,
)
BUILDS = Counter(
    "kaci_operator_builds",
    "Scoring-image builds and model stores, by what (scoring, model) and result: built, "
    "cached (the content-addressed tag was already in the registry), failed (the user's "
    "build failed), unavailable (the builder or registry could not be reached), error.",
    ["what", "result"],
    registry=REGISTRY,
)
BUILD_SECONDS = Histogram(
    "kaci_operator_build_duration_seconds",
    "Seconds from asking the builder to the pushed digest (or the failure), by what and result.",
    ["what", "result"],
    buckets=BUILD_BUCKETS,
    registry=REGISTRY,
)
BUILD_CONTEXT_BYTES = Counter(
    "kaci_operator_build_context_bytes",
    "Bytes of build context (score.py, model files, environment) sent to the builder.",
    ["what"],
    registry=REGISTRY,
)
TIME_TO_READY = Histogram(
    "kaci_operator_time_to_ready_seconds",
    "Seconds an object took to turn Ready, by kind: from its creation, or from when it "
    "last stopped being Ready (an update rolling out). For a Webservice: the deploy time.",
    ["kind"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
API_ERRORS = Counter(
    "kaci_operator_api_errors",
    "Kubernetes API calls that failed, by call and HTTP status (0: no answer).",
    ["call", "code"],
    registry=REGISTRY,
)

WATCH_EVENTS = Counter(
    "kaci_operator_watch_events",
    "Watch events the operator handled, by the object's kind and the event's type "
    "(listed: from a list at the watch's start).",
    ["kind", "type"],
    registry=REGISTRY,
)


def watch_event(kind: str, event_type: str | None) -> None:
    WATCH_EVENTS.labels(kind, event_type or "listed").inc()


@contextmanager
def timed_pass(kind: str) -> Iterator[Callable[[str], None]]:
    """Time one pass; the caller says its outcome (an exception counts as 'error')."""
    outcome = ["error"]

    def said(value: str) -> None:
        outcome[0] = value

    start = time.perf_counter()
    try:
        yield said
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - start)
        RECONCILES.labels(kind, outcome[0]).inc()


def observe_build(what: str, result: str, seconds: float, context_bytes: int) -> None:
    BUILDS.labels(what, result).inc()
    BUILD_SECONDS.labels(what, result).observe(seconds)
    if result != "cached":
        BUILD_CONTEXT_BYTES.labels(what).inc(context_bytes)


def time_to_ready(kind: str, seconds: float) -> None:
    TIME_TO_READY.labels(kind).observe(max(seconds, 0.0))


def api_error(call: str, code: int | None) -> None:
    API_ERRORS.labels(call, str(code or 0)).inc()


def _start_at_zero() -> None:
    """Make the series of the known labels exist at 0 from the start: Prometheus'
    rate() and increase() take a series' first sample as their base, so an event
    that creates its series (the first build, the first deploy) would never show."""
    for kind in ("Model", "Image", "Webservice"):
        RECONCILE_SECONDS.labels(kind)
        TIME_TO_READY.labels(kind)
        for outcome in ("done", "soon", "wait", "failed", "error"):
            RECONCILES.labels(kind, outcome)
    for what in ("scoring", "model"):
        BUILD_CONTEXT_BYTES.labels(what)
        for result in ("built", "cached", "failed", "unavailable", "error"):
            BUILDS.labels(what, result)
            BUILD_SECONDS.labels(what, result)


_start_at_zero()


@dataclass(frozen=True)
class Levels:
    """What the runner knows at one instant: (kind, state) of every object it holds,
    how many keys are queued, and how many wait on a backoff."""

    states: Iterable[tuple[str, str]]
    queued: int
    waiting: int


class LevelCollector(Collector):
    """Gauges read at scrape time from a callable the runner gives (see observe_levels)."""

    def __init__(self) -> None:
        self._read: Callable[[], Levels] | None = None
        self._lock = threading.Lock()

    def set_source(self, read: Callable[[], Levels] | None) -> None:
        with self._lock:
            self._read = read

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            read = self._read
        objects = GaugeMetricFamily(
            "kaci_operator_objects",
            "Objects the operator holds, by kind and status.state (Unknown: no state yet).",
            labels=["kind", "state"],
        )
        queued = GaugeMetricFamily(
            "kaci_operator_queue_depth", "Objects queued to be looked at (now or later)."
        )
        waiting = GaugeMetricFamily(
            "kaci_operator_objects_waiting",
            "Objects on a backoff: waiting for a dependency or the infrastructure.",
        )
        if read is not None:
            levels = read()
            for (kind, state), n in sorted(Tally(levels.states).items()):
                objects.add_metric([kind, state], n)
            queued.add_metric([], levels.queued)
            waiting.add_metric([], levels.waiting)
        return [objects, queued, waiting]


LEVELS = LevelCollector()
REGISTRY.register(LEVELS)


def observe_levels(read: Callable[[], Levels] | None) -> None:
    """Where the level gauges come from (None: nothing to report, e.g. after stop)."""
    LEVELS.set_source(read)


def serve(port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 (a Pod's port)
    """Serve /metrics on its own thread (prometheus_client's HTTP server)."""
    start_http_server(port, addr=address, registry=REGISTRY)
