"""A real Prometheus (Debian's `prometheus` package) as a host process, for the tests
that prove the chart's dashboard: its config, its start and stop (by PID), its HTTP API,
and the dashboard's queries made concrete.

Prometheus scrapes what a cluster's monitoring would: the operator's /metrics (a
host-side operator here: a static target) and the scoring Pods' /metrics (the host
reaches Pod IPs on the node's bridge directly). Debian's Prometheus is built without
kubernetes_sd, so the test lists the Pods itself and writes them to a file_sd file,
with the labels the chart's PodMonitor gives them: `namespace`, `pod`, and `webservice`
from the Pod's `kaci.dev/webservice` label.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import processes  # type: ignore[import-not-found,unused-ignore]  # tests/shared
import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "charts" / "kaci" / "dashboards" / "kaci.json"
SCRAPE_INTERVAL_S = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(operator_port: int, pods_file: Path) -> dict[str, Any]:
    """Scrape the operator on 127.0.0.1, and the scoring Pods listed in `pods_file`
    (file_sd: Debian's build has no kubernetes_sd; see scoring_targets)."""
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
            "scrape_timeout": f"{SCRAPE_INTERVAL_S - 1}s",
            "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
        },
        "scrape_configs": [
            {
                "job_name": "kaci-operator",
                "static_configs": [{"targets": [f"127.0.0.1:{operator_port}"]}],
            },
            {
                "job_name": "kaci-scoring",
                "file_sd_configs": [{"files": [str(pods_file)], "refresh_interval": "5s"}],
            },
        ],
    }


def scoring_targets(pods: dict[str, Any], port: int) -> list[dict[str, Any]]:
    """file_sd targets for the running scoring Pods of a `kubectl get pods -o json`, with
    the labels the chart's PodMonitor gives them: namespace, pod, and webservice (the
    Pod's kaci.dev/webservice label)."""
    out = []
    for pod in pods["items"]:
        meta, status = pod["metadata"], pod.get("status") or {}
        labels = meta.get("labels") or {}
        if labels.get("app.kubernetes.io/name") != "kaci-webservice":
            continue
        if status.get("phase") != "Running" or not status.get("podIP"):
            continue
        out.append(
            {
                "targets": [f"{status['podIP']}:{port}"],
                "labels": {
                    "namespace": meta["namespace"],
                    "pod": meta["name"],
                    "webservice": labels.get("kaci.dev/webservice", ""),
                },
            }
        )
    return out


def write_targets(path: Path, targets: list[dict[str, Any]]) -> None:
    """Replace the file at once (Prometheus may read it at any moment)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(targets))
    tmp.replace(path)


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a success, AssertionError otherwise."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as resp:
            body = json.load(resp)
        assert body.get("status") == "success", body
        return body["data"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        data = self.api(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step}"
        )
        assert data["resultType"] == "matrix", data
        return list(data["result"])

    def targets_up(self, job: str) -> int:
        active = self.api("targets", state="active")["activeTargets"]
        return sum(1 for t in active if t["labels"].get("job") == job and t["health"] == "up")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        raise AssertionError(
            "prometheus is not installed: hack/install-deps.sh installs Debian's package"
        )
    return path


@contextlib.contextmanager
def run_prometheus(cfg: dict[str, Any]) -> Iterator[Prometheus]:
    """Start Prometheus on a free 127.0.0.1 port with `cfg`; stop it by its PID."""
    work = Path(tempfile.mkdtemp(prefix="kaci-prometheus-"))
    (work / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    log = work / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary(),
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1d",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not start:\n{prom.log_tail()}")
            time.sleep(0.5)
        yield prom
    finally:
        processes.stop(proc, 30)
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref: str
    expr: str


def dashboard_queries(path: Path = DASHBOARD) -> list[PanelQuery]:
    """Every panel's every query in the dashboard JSON (rows' nested panels too)."""
    dash = json.loads(path.read_text())
    out: list[PanelQuery] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            walk(p.get("panels") or [])
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append(PanelQuery(str(p["title"]), str(t.get("refId", "")), t["expr"]))

    walk(dash["panels"])
    return out


def concrete(expr: str, variables: dict[str, str]) -> str:
    """A query with Grafana's variables replaced ($name and ${name}), longest name first
    so that $__rate_interval is not read as $__rate."""
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name]).replace("$" + name, variables[name])
    assert "$" not in expr, f"a variable the test does not set: {expr}"
    return expr
