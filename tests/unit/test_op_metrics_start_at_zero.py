"""The operator's counters and histograms of the known labels exist at 0 before any
event: Prometheus' rate() and increase() take a series' first sample as their base, so
the first build or deploy, if it created its series, would never show on a dashboard."""

from __future__ import annotations

import pytest
from kaci.edges import metrics


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("kaci_operator_reconciles_total", {"kind": "Webservice", "outcome": "done"}),
        ("kaci_operator_builds_total", {"what": "scoring", "result": "built"}),
        ("kaci_operator_build_duration_seconds_count", {"what": "model", "result": "built"}),
        ("kaci_operator_time_to_ready_seconds_count", {"kind": "Webservice"}),
        ("kaci_operator_reconcile_duration_seconds_count", {"kind": "Image"}),
        ("kaci_operator_build_context_bytes_total", {"what": "scoring"}),
    ],
)
def test_known_series_exist_before_any_event(name: str, labels: dict[str, str]) -> None:
    # other tests may have bumped them: present (not None) and a number is the promise
    value = metrics.REGISTRY.get_sample_value(name, labels)
    assert value is not None
    assert value >= 0
