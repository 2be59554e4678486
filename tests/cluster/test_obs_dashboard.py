"""The chart's Grafana dashboard on real data: a real Prometheus scrapes a host-side
operator (KACI_METRICS_PORT) and the scoring Pods, a Webservice is deployed and scored
(with some errors), and every query of every panel in charts/kaci/dashboards/kaci.json
returns a series with a value above zero. The queries are read from the JSON, so a new
panel is covered without touching this test.

What makes each panel's data, on purpose:
- a Webservice from model files: a model store and an image build (build time, builds
  by result), its deploy (deploy time), passes (reconciles), objects by state;
- a second Webservice on the first one's Image in a namespace whose ResourceQuota
  allows no second Service: its Pod runs (replicas: two), its Service is refused with
  403 (API errors), so it waits on a backoff (objects waiting);
- scoring requests, a few of them bad (500 from run(), 404 from a wrong path).

KACI_DASHBOARD_PICTURES=<folder>: then keep scoring for KACI_DASHBOARD_MINUTES (4) more
minutes and draw the panels from this Prometheus (bench/plots/dashboard.py) before it
stops: the picture in charts/kaci/README.md.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from kaci.api import SCORING_PORT
from support.kaci_operator import (  # type: ignore[import-not-found,unused-ignore]
    ROOT,
    Operator,
    as_stdin,
    example,
    first_score,
    run_operator,
    train,
    wait_until,
)
from support.prometheus import (  # type: ignore[import-not-found,unused-ignore]
    Prometheus,
    concrete,
    config,
    dashboard_queries,
    free_port,
    run_prometheus,
    scoring_targets,
    write_targets,
)

FIRST = "aci-mnist-1"  # the walkthrough's option 1 (model files)
SECOND = "obs-second"


def second_webservice(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "kaci.dev/v1alpha1",
        "kind": "Webservice",
        "metadata": {"name": SECOND},
        "spec": {"image": {"name": image}, "deploymentConfig": {"cpuCores": 0.1, "memoryGb": 0.5}},
    }


def one_service_only() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "one-service"},
        "spec": {"hard": {"services": "1"}},
    }


def traffic(ip: str, good: bytes, rounds: int = 20) -> None:
    """Scoring requests: mostly good, one that run() fails on, one to a wrong path."""
    for _ in range(rounds):
        assert requests.post(f"http://{ip}/score", data=good, timeout=30).status_code == 200
    bad = requests.post(f"http://{ip}/score", data=b'{"data": "not pixels"}', timeout=30)
    assert bad.status_code >= 400, bad.text
    assert requests.get(f"http://{ip}/no-such-route", timeout=30).status_code == 404


def positive(series: list[Any]) -> bool:
    """Some series has a value that is a number above zero at some step."""
    for s in series:
        for _, value in s["values"]:
            v = float(value)
            if not math.isnan(v) and v > 0:
                return True
    return False


def missing_panels(prom: Prometheus, variables: dict[str, str], start: float) -> list[str]:
    missing = []
    for q in dashboard_queries():
        expr = concrete(q.expr, variables)
        got = prom.query_range(expr, start, time.time(), step=5)
        if not got or not positive(got):
            missing.append(f"{q.panel} [{q.ref}]: {expr} -> {json.dumps(got)[:300]}")
    return missing


def diagnose(kubectl: Any, ns: str, op: Operator, prom: Prometheus) -> str:
    try:
        objs = kubectl("get", "kaci,deploy,pods,resourcequota", "-n", ns, "-o", "wide")
        targets = json.dumps(prom.api("targets", state="active")["activeTargets"])[:3000]
    except Exception as e:  # the diagnosis must never hide the failure
        objs, targets = f"(failed: {e})", ""
    return (
        f"{objs}\n--- targets ---\n{targets}\n--- prometheus ---\n{prom.log_tail()}"
        f"\n--- operator ---\n{op.log_tail()}"
    )


def test_every_dashboard_query_returns_data(
    kubectl: Any, crds: None, make_namespace: Any, tmp_path: Path
) -> None:
    ns = make_namespace(f"t-obs-{secrets.token_hex(3)}")
    metrics_port = free_port()
    pods_file = tmp_path / "scoring-pods.json"
    write_targets(pods_file, [])
    with (
        run_prometheus(config(metrics_port, pods_file)) as prom,
        run_operator(f"obs-{secrets.token_hex(3)}", {"KACI_METRICS_PORT": str(metrics_port)}) as op,
    ):
        start = time.time()
        try:
            wait_until(lambda: prom.targets_up("kaci-operator"), "the operator's scrape")
            deploy_and_check(kubectl, ns, op, prom, start, tmp_path, pods_file)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{diagnose(kubectl, ns, op, prom)}") from e
        finally:
            # while the operator still runs (its finalizers), then the namespace goes
            kubectl("delete", "webservices,images,models", "--all", "-n", ns, timeout=300)


def deploy_and_check(
    kubectl: Any,
    ns: str,
    op: Operator,
    prom: Prometheus,
    start: float,
    tmp_path: Path,
    pods_file: Path,
) -> None:
    model_file, sample = train(tmp_path)
    mnist = ROOT / "examples" / "mnist"
    kubectl("create", "configmap", "mnist-model", f"--from-file={model_file}", "-n", ns)
    kubectl(
        "create",
        "configmap",
        "mnist-scoring",
        f"--from-file={mnist / 'score.py'}",
        f"--from-file={mnist / 'myenv.yml'}",
        "-n",
        ns,
    )
    first = [op.label(d) for d in example("webservices.yaml") if d["metadata"]["name"] == FIRST]
    kubectl("apply", "-n", ns, "-f", "-", input=as_stdin(first))
    kubectl(
        "wait",
        "--for=condition=Ready",
        f"webservice/{FIRST}",
        "-n",
        ns,
        "--timeout=900s",
        timeout=960,
    )

    ws = json.loads(kubectl("get", "webservice", FIRST, "-n", ns, "-o", "json"))
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(one_service_only()))
    second = op.label(second_webservice(ws["status"]["image"]["name"]))
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(second))

    ip = kubectl("get", "service", FIRST, "-n", ns, "-o", "jsonpath={.spec.clusterIP}")
    good = json.dumps(sample).encode()
    assert first_score(ip, good).status_code == 200

    variables = {"namespace": ns, "webservice": ".+", "window": "1h", "__rate_interval": "1m"}
    missing: list[str] = []
    for _ in range(60):  # bounded: scrapes every 5 s, rates need two of them
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-o", "json"))
        write_targets(pods_file, scoring_targets(pods, SCORING_PORT))
        traffic(ip, good)
        missing = missing_panels(prom, variables, start)
        if not missing:
            break
        time.sleep(3)
    assert not missing, "panels without data:\n" + "\n".join(missing)

    # The dashboard's variables list this namespace and both Webservices.
    assert ns in prom.api("label/namespace/values", **{"match[]": "kaci_requests_total"})
    names = prom.api("label/webservice/values", **{"match[]": f'up{{namespace="{ns}"}}'})
    assert {FIRST, SECOND} <= set(names)

    pictures = os.environ.get("KACI_DASHBOARD_PICTURES")
    if pictures:
        # A few minutes more of traffic that rises and falls, so the picture shows a shape.
        minutes = float(os.environ.get("KACI_DASHBOARD_MINUTES", "4"))
        until = time.monotonic() + minutes * 60
        while time.monotonic() < until:
            phase = int(time.monotonic() // 30) % 4  # 30 s each: 20, 60, 120, 60 requests
            traffic(ip, good, rounds=(20, 60, 120, 60)[phase])
            time.sleep(2)
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "plots" / "dashboard.py"),
                f"--prometheus={prom.url}",
                f"--start={start:.0f}",
                f"--namespace={ns}",
                f"--out={pictures}",
            ],
            check=True,
            timeout=300,
        )
