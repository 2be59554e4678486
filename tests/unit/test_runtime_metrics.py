"""kaci_runtime.metrics: what /metrics says, read back with Prometheus' own text parser."""

from __future__ import annotations

from kaci_runtime.metrics import BUCKETS, LocalMetrics
from prometheus_client.parser import text_string_to_metric_families


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_requests_errors_and_latency_are_counted() -> None:
    m = LocalMetrics()
    m.observe("/score", 200, 0.0004)
    m.observe("/score", 200, 0.001)  # exactly on a bound: counted in that bucket ("le")
    m.observe("/score", 500, 2.0)
    m.observe("/", 200, 0.0001)
    m.observe_run(0.0003)
    got = samples(m.render())
    route = (("code", "200"), ("route", "/score"))
    assert got[("kaci_requests_total", route)] == 2
    assert got[("kaci_requests_total", (("code", "500"), ("route", "/score")))] == 1
    assert got[("kaci_errors_total", (("code", "500"), ("route", "/score")))] == 1
    assert ("kaci_errors_total", route) not in got
    bucket = "kaci_request_duration_seconds_bucket"
    assert got[(bucket, (("le", "0.0005"), ("route", "/score")))] == 1
    assert got[(bucket, (("le", "0.001"), ("route", "/score")))] == 2
    assert got[(bucket, (("le", "2.5"), ("route", "/score")))] == 3
    assert got[(bucket, (("le", "+Inf"), ("route", "/score")))] == 3
    assert got[("kaci_request_duration_seconds_count", (("route", "/score"),))] == 3
    assert abs(got[("kaci_request_duration_seconds_sum", (("route", "/score"),))] - 2.0014) < 1e-9
    assert got[("kaci_run_duration_seconds_count", ())] == 1


def test_buckets_are_cumulative_and_end_at_inf() -> None:
    m = LocalMetrics()
    for seconds in (0.0001, 0.02, 0.3, 100.0):
        m.observe("/score", 200, seconds)
    got = samples(m.render())
    values = [
        got[("kaci_request_duration_seconds_bucket", (("le", le), ("route", "/score")))]
        for le in [*map(str, BUCKETS), "+Inf"]
    ]
    assert values == sorted(values)
    assert values[-1] == 4
    assert values[-2] == 3  # 100 s is beyond the last bound
