"""Operator scale benchmark: time to converge N Webservices and M Models, and what the
operator costs while doing it (RSS and CPU time from /proc of its process).

    make bench-scale                      # or: .venv/bin/python bench/scale/run.py
    BENCH_WEBSERVICES=10,50,100 BENCH_MODELS=1000 BENCH_DISTINCT_MODELS=20

Runs against the local cluster (`make cluster`, context kaci-local) with an operator of
its own (a subprocess, `KACI_OPERATOR_INSTANCE=bench-...`, so no other kaci operator
touches its objects), in a namespace of its own, deleted at the end.

- Webservices: one shared prebuilt Image (a tiny score.py, no extra packages), each
  Webservice `image: {name}` with tiny requests = limits (the node has 2 cores, so
  100 Pods fit only at 0.01 cores each). For each N, from nothing: create N, time
  until the operator has made every Deployment ("applied") and until every Webservice
  is Ready ("ready", which includes the kubelet starting N Pods), then delete them all
  and wait until their Pods are gone.
- Models: M Model objects from one small ConfigMap, all with one modelName (the same
  content, so the registry holds one model image and the operator's per-object work is
  measured: fetch, digest, registry look-up, status); then K Models with distinct
  content (one model-image build and push each), to show what a distinct model costs.

Results: a table on stdout and JSON in bench/results/scale-<time>.json.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CONTEXT = "kaci-local"
GROUP, VERSION = "kaci.dev", "v1alpha1"
INSTANCE_LABEL = "kaci.dev/operator"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SCORE = """import json
import os


def init():
    global factor
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "factor.txt")) as f:
        factor = float(f.read())


def run(raw_data):
    return [x * factor for x in json.loads(raw_data)["data"]]
"""
# requests = limits. 100 Pods at 0.01 cores fit beside what else runs on the 2-core node.
CPU_CORES = 0.01
MEMORY_GB = 0.1
DEADLINE_S = 1800


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Sampler:
    """Samples RSS and CPU time of one process from /proc every `every_s` seconds."""

    pid: int
    every_s: float = 0.25
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def rss(self) -> int:
        with Path(f"/proc/{self.pid}/statm").open() as f:
            return int(f.read().split()[1]) * PAGE

    def cpu_s(self) -> float:
        # fields after the ")" of comm: utime and stime are the 12th and 13th
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        rest = stat.rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            with contextlib.suppress(OSError):
                self.peak_rss = max(self.peak_rss, self.rss())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def reset_peak(self) -> None:
        self.peak_rss = self.rss()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


@contextlib.contextmanager
def operator(
    instance: str, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    logfile = Path(tempfile.mkstemp(prefix="kaci-bench-operator-", suffix=".log")[1])
    env = {
        **os.environ,
        "KUBECONFIG": str(KUBECONFIG),
        "KACI_OPERATOR_INSTANCE": instance,
        # What is measured here is reconciling, not building: the one image is built
        # by the node's Docker Engine, which the local cluster has.
        "KACI_BUILDER": "docker",
        "KACI_DEFAULT_BASE_IMAGE": "127.0.0.1:5000/kaci/python:3.11",
        "KACI_PIP_FIND_LINKS": "/wheels",
        "KACI_PIP_NO_INDEX": "true",
        **(extra_env or {}),
    }
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kaci.operator"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    log(f"operator pid {proc.pid}, log {logfile}")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def crds() -> None:
    """The CRDs from crds/ (server-side apply, idempotent), Established: a fresh
    cluster has none until a test or the chart installs them."""
    kubectl = [
        str(ROOT / ".cluster" / "bin" / "kubectl"),
        f"--kubeconfig={KUBECONFIG}",
        f"--context={CONTEXT}",
    ]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [
            *kubectl,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "-f",
            str(ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )


def wait_for(what: str, check: Callable[[], bool], every_s: float = 0.5) -> float:
    """Seconds until check() holds (polling); raises after DEADLINE_S."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > DEADLINE_S:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(every_s)
    return time.monotonic() - t0


def ready(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


class Bench:
    def __init__(self, api: client.ApiClient, ns: str, instance: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.ns, self.instance = ns, instance

    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, "labels": {INSTANCE_LABEL: self.instance}},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)

    def lister(self, plural: str) -> Callable[..., Any]:
        """The namespace's list call for a kaci kind (a watch, given watch=True)."""
        return functools.partial(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, self.ns, plural
        )

    def items(self, plural: str) -> list[dict[str, Any]]:
        got: Any = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, plural)
        return list(got["items"])

    def configmap(self, name: str, data: dict[str, str]) -> None:
        cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)
        self.core.create_namespaced_config_map(self.ns, cm)


def webservices_round(b: Bench, sampler: Sampler, n: int) -> dict[str, Any]:
    names = [f"ws-{n}-{i}" for i in range(n)]
    sampler.reset_peak()
    cpu0 = sampler.cpu_s()
    t0 = time.monotonic()
    for name in names:
        b.create(
            "webservices",
            "Webservice",
            name,
            {
                "image": {"name": "img"},
                "deploymentConfig": {"cpuCores": CPU_CORES, "memoryGb": MEMORY_GB},
            },
        )
    created = time.monotonic() - t0
    want = set(names)

    def applied() -> bool:
        deps = b.apps.list_namespaced_deployment(b.ns).items
        return want <= {d.metadata.name for d in deps if d.metadata}

    wait_for(f"{n} Deployments", applied)
    t_applied = time.monotonic() - t0

    def all_ready() -> bool:
        got = {w["metadata"]["name"] for w in b.items("webservices") if ready(w)}
        return want <= got

    wait_for(f"{n} Webservices Ready", all_ready, every_s=1.0)
    t_ready = time.monotonic() - t0
    cpu = sampler.cpu_s() - cpu0
    result = {
        "n": n,
        "create_s": round(created, 2),
        "applied_s": round(t_applied, 2),
        "ready_s": round(t_ready, 2),
        "operator_cpu_s": round(cpu, 2),
        "operator_peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "operator_rss_end_mb": round(sampler.rss() / 2**20, 1),
    }
    log(f"webservices {result}")
    for name in names:
        b.custom.delete_namespaced_custom_object(GROUP, VERSION, b.ns, "webservices", name)

    def pods_gone() -> bool:
        return not b.core.list_namespaced_pod(b.ns, label_selector="kaci.dev/webservice").items

    result["teardown_s"] = round(wait_for("the Pods to go", pods_gone, every_s=1.0), 2)
    return result


def models_round(b: Bench, sampler: Sampler, m: int, distinct: bool) -> dict[str, Any]:
    tag = "distinct" if distinct else "same"
    if distinct:
        for i in range(m):
            b.configmap(f"cm-{tag}-{i}", {"weights.txt": f"{i}\n"})
    sampler.reset_peak()
    cpu0 = sampler.cpu_s()
    t0 = time.monotonic()
    for i in range(m):
        cm = f"cm-{tag}-{i}" if distinct else "factor"
        model_name = f"bench-{tag}-{i}" if distinct else "bench-shared"
        b.create(
            "models",
            "Model",
            f"m-{tag}-{i}",
            {"modelName": model_name, "source": {"configMap": {"name": cm}}},
        )
    created = time.monotonic() - t0
    prefix = f"m-{tag}-"

    def all_ready() -> bool:
        done = [x for x in b.items("models") if x["metadata"]["name"].startswith(prefix)]
        return sum(1 for x in done if ready(x)) >= m

    wait_for(f"{m} Models Ready", all_ready, every_s=1.0)
    t_ready = time.monotonic() - t0
    result = {
        "models": m,
        "content": tag,
        "create_s": round(created, 2),
        "ready_s": round(t_ready, 2),
        "per_model_ms": round(1000 * t_ready / m, 1),
        "operator_cpu_s": round(sampler.cpu_s() - cpu0, 2),
        "operator_peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "operator_rss_end_mb": round(sampler.rss() / 2**20, 1),
    }
    log(f"models {result}")
    return result


def table(results: dict[str, Any]) -> str:
    lines = [
        "| Webservices | applied (s) | all Ready (s) | operator CPU (s) | peak RSS (MB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results["webservices"]:
        lines.append(
            f"| {r['n']} | {r['applied_s']} | {r['ready_s']} | {r['operator_cpu_s']} "
            f"| {r['operator_peak_rss_mb']} |"
        )
    lines += [
        "",
        "| Models | content | all Ready (s) | per Model (ms) | operator CPU (s) | peak RSS (MB) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in results["models"]:
        lines.append(
            f"| {r['models']} | {r['content']} | {r['ready_s']} | {r['per_model_ms']} "
            f"| {r['operator_cpu_s']} | {r['operator_peak_rss_mb']} |"
        )
    return "\n".join(lines)


def main() -> int:
    sizes = [int(x) for x in os.environ.get("BENCH_WEBSERVICES", "10,50,100").split(",") if x]
    n_models = int(os.environ.get("BENCH_MODELS", "1000"))
    n_distinct = int(os.environ.get("BENCH_DISTINCT_MODELS", "20"))
    crds()
    api = config.new_client_from_config(config_file=str(KUBECONFIG), context=CONTEXT)  # type: ignore[no-untyped-call]
    core = client.CoreV1Api(api)
    token = secrets.token_hex(3)
    ns, instance = f"kaci-bench-scale-{token}", f"bench-{token}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels={"kaci.dev/test": "true"}))
    )
    wait_for(
        "the default ServiceAccount", lambda: bool(core.list_namespaced_service_account(ns).items)
    )
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_before": Path("/proc/loadavg").read_text().split()[:3],
        "cpu_cores": CPU_CORES,
        "memory_gb": MEMORY_GB,
        "webservices": [],
        "models": [],
    }
    try:
        with operator(instance) as proc:
            sampler = Sampler(proc.pid)
            sampler.start()
            b = Bench(api, ns, instance)
            b.configmap("factor", {"factor.txt": "2"})
            b.create("models", "Model", "factor", {"source": {"configMap": {"name": "factor"}}})
            b.create(
                "images",
                "Image",
                "img",
                {
                    "models": [{"name": "factor"}],
                    "executionScript": {"inline": f"# bench {token}\n{SCORE}"},
                },
            )
            t = wait_for("the shared Image", lambda: any(ready(i) for i in b.items("images")))
            log(f"shared image built in {t:.1f} s")
            results["image_build_s"] = round(t, 1)
            results["operator_idle_rss_mb"] = round(sampler.rss() / 2**20, 1)
            for n in sizes:
                results["webservices"].append(webservices_round(b, sampler, n))
            if n_models:
                results["models"].append(models_round(b, sampler, n_models, distinct=False))
            if n_distinct:
                results["models"].append(models_round(b, sampler, n_distinct, distinct=True))
            results["operator_rss_final_mb"] = round(sampler.rss() / 2**20, 1)
            sampler.stop()
            if proc.poll() is not None:
                raise RuntimeError(f"the operator exited ({proc.returncode})")
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(ns)
    results["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    out = ROOT / "bench" / "results" / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(
        f"\nimage build {results['image_build_s']} s; idle RSS {results['operator_idle_rss_mb']} MB"
    )
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
