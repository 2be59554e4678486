"""The chart's Grafana dashboard: its ConfigMap (opt-in, the sidecar's label, the JSON
file unchanged) and the dashboard JSON itself, whose queries name only metrics the
operator and the runtime export (tests/cluster/test_obs_dashboard.py runs them on real
data)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kaci.edges import metrics as operator_metrics
from kaci_runtime.metrics import LocalMetrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kaci"
DASHBOARD = CHART / "dashboards" / "kaci.json"
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range"}


def render(*args: str) -> list[dict[str, Any]]:
    helm = shutil.which("helm")
    if helm is None:
        pytest.fail("helm is not on PATH: `make cluster` puts it in .cluster/bin")
    proc = subprocess.run(
        [helm, "template", "kaci", str(CHART), "--namespace", "kaci-system", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def config_maps(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "ConfigMap" and "kaci.json" in (d.get("data") or {})]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def queries() -> list[tuple[str, str]]:
    return [
        (p["title"], t["expr"])
        for p in dashboard()["panels"]
        for t in p.get("targets") or []
        if t.get("expr")
    ]


def test_no_dashboard_by_default() -> None:
    assert config_maps(render()) == []


def test_the_configmap_carries_the_file_and_the_sidecar_label() -> None:
    (cm,) = config_maps(render("--set", "dashboard.enabled=true"))
    assert cm["metadata"]["namespace"] == "kaci-system"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["kaci.json"]) == dashboard()


def test_in_another_namespace_with_other_labels() -> None:
    (cm,) = config_maps(render("-f", str(CHART / "ci" / "dashboard-values.yaml")))
    assert cm["metadata"]["namespace"] == "monitoring"
    # a name of its own per release namespace: two releases never claim one ConfigMap
    assert "kaci-system" in cm["metadata"]["name"]
    assert cm["metadata"]["annotations"] == {"grafana_folder": "kaci"}


def exported_names() -> set[str]:
    """Every sample name the operator's and the runtime's registries expose."""
    names: set[str] = {"up"}
    for registry in (operator_metrics.REGISTRY, LocalMetrics().registry):
        for family in registry.collect():
            names.add(family.name)
            names.update(s.name for s in family.samples)
    # histograms show _bucket/_sum/_count only once observed: name them all
    for n in list(names):
        names.update(f"{n}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_total"))
    return names


def test_queries_name_only_exported_metrics() -> None:
    exported = exported_names()
    for title, expr in queries():
        used = set(re.findall(r"\b(kaci_[a-z_]+|up)\b(?=\s*[{\[)])", expr))
        assert used, f"{title}: no metric in {expr}"
        assert used <= exported, f"{title}: {used - exported} not exported"


def test_every_variable_used_is_defined() -> None:
    defined = {v["name"] for v in dashboard()["templating"]["list"]} | GRAFANA_VARIABLES
    for title, expr in queries():
        used = set(re.findall(r"\$\{?(\w+)", expr))
        assert used <= defined, f"{title}: {used - defined}"


def test_panels_are_current_grafana_timeseries_with_unique_ids() -> None:
    d = dashboard()
    assert d["schemaVersion"] >= 39  # Grafana 11 and 12 (41)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    shown = [p for p in d["panels"] if p["type"] != "row"]
    assert all(p["type"] == "timeseries" and p["targets"] for p in shown)
    assert {p["title"] for p in shown} >= {
        "Deploy time (apply to Ready)",
        "Build time",
        "Builds by result",
        "Reconciles by outcome",
        "Objects by state",
        "Objects waiting",
        "API errors",
        "Request rate",
        "Latency p50 / p99",
        "Errors by code",
        "Replicas",
    }
    # every panel and query reads the datasource the user picks
    assert all(p["datasource"]["uid"] == "${datasource}" for p in shown)
