"""AKS-class serving on the local cluster (issue #16), side by side in one run:

1. **Replicas.** One Webservice (the MNIST tutorial's model, deploy option 1) at 1, 2
   and 4 replicas, each replica small (`cpuCores` 0.1 requested, `cpuCoresLimit`
   0.25), under the same load: wrk, 8 keep-alive connections, POSTing the tutorial's
   5-sample request to the Service's ClusterIP from the host for --seconds. req/s, p50,
   p99, non-2xx.
2. **Ingress against ClusterIP.** At 1 replica, 1 connection (latency, not
   throughput): the same POST to the ClusterIP and to `status.scoringUri` (the
   Ingress, Traefik on 127.0.0.1:8080); the milliseconds the Ingress adds at p50/p99.
3. **The HPA.** The Webservice switched to `autoscale` (min 1, max 2, target 30 % of
   the CPU request, refreshSeconds 1): seconds from the start of the same load to
   the second replica Ready, and from the end of the load to one replica again.
   Needs metrics.k8s.io (metrics-server); without it this part is reported as not
   measured.

    .venv/bin/python bench/serving/run.py [--seconds 15] [--keep]

It starts its own operator from this tree (`python -m kaci.operator`, stopped by PID at
the end) with a fresh KACI_OPERATOR_INSTANCE, so the demo's operator leaves its
objects alone, in a fresh namespace `t-add-bench-<hex>` (deleted at the end unless
--keep). Everything runs on one 2-core machine: wrk, Traefik, kube-proxy and the
replicas share it, so replicas add throughput only until the cores are busy.
Results: a table on stdout and JSON in bench/results/serving-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "examples" / "mnist"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = str(ROOT / ".cluster" / "bin" / "kubectl")
POST_LUA = ROOT / "bench" / "runtime" / "post.lua"
API = "kaci.dev/v1alpha1"
NAME = "bench"
INGRESS_BASE_URL = "http://127.0.0.1:8080"


def kubectl(*args: str, stdin: str | None = None, timeout: float = 600) -> str:
    cmd = [KUBECTL, f"--kubeconfig={KUBECONFIG}", "--context=kaci-local", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def wait_until(check: Callable[[], Any], what: str, timeout_s: float, every_s: float = 0.5) -> Any:
    """Poll check() until it returns something truthy; raise after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(every_s)


# ---------------------------------------------------------------- setup


def webservice(instance: str, deployment_config: dict[str, Any]) -> dict[str, Any]:
    """The tutorial's Webservice (from model files), small replicas, an Ingress."""
    return {
        "apiVersion": API,
        "kind": "Webservice",
        "metadata": {"name": NAME, "labels": {"kaci.dev/operator": instance}},
        "spec": {
            "modelFiles": {
                "modelName": "sklearn_mnist",
                "configMap": {"name": "mnist-model", "keys": ["sklearn_mnist_model.pkl"]},
            },
            "imageConfig": {
                "executionScript": {"configMap": {"name": "mnist-scoring", "key": "score.py"}},
                "runtime": "python",
                "condaFile": {"configMap": {"name": "mnist-scoring", "key": "myenv.yml"}},
            },
            "deploymentConfig": {
                "cpuCores": 0.1,
                "cpuCoresLimit": 0.25,
                "memoryGb": 0.5,
                "ingress": {"enabled": True},
                **deployment_config,
            },
        },
    }


def prepare_namespace(ns: str, model_dir: Path) -> bytes:
    """The namespace, the model and scoring ConfigMaps; returns the sample request."""
    subprocess.run(
        [sys.executable, str(MNIST / "train.py"), "--out", str(model_dir)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "kaci.dev/test=true")
    wait_until(
        lambda: _ok(lambda: kubectl("get", "serviceaccount", "default", "-n", ns)),
        "the namespace's default ServiceAccount",
        60,
    )
    model = str(model_dir / "sklearn_mnist_model.pkl")
    kubectl("create", "configmap", "mnist-model", "-n", ns, f"--from-file={model}")
    kubectl(
        "create", "configmap", "mnist-scoring", "-n", ns,
        f"--from-file={MNIST / 'score.py'}", f"--from-file={MNIST / 'myenv.yml'}",
    )  # fmt: skip
    return (model_dir / "sample-request.json").read_bytes()


def _ok(fn: Callable[[], Any]) -> bool:
    try:
        fn()
    except RuntimeError:
        return False
    return True


def start_operator(instance: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBECONFIG": str(KUBECONFIG),
        "KACI_OPERATOR_INSTANCE": instance,
        # What is measured here is serving, not building: the one image is built
        # by the node's Docker Engine, which the local cluster has.
        "KACI_BUILDER": "docker",
        "KACI_DEFAULT_BASE_IMAGE": "127.0.0.1:5000/kaci/python:3.11",
        "KACI_PIP_FIND_LINKS": "/wheels",
        "KACI_PIP_NO_INDEX": "true",
        "KACI_BUILD_TIMEOUT_S": "900",
        "KACI_INGRESS_CLASS": "kaci-local",
        "KACI_INGRESS_BASE_URL": INGRESS_BASE_URL,
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kaci.operator"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


# ---------------------------------------------------------------- observation


def ready_pods(ns: str) -> int:
    """Ready scoring Pods of the Webservice (not terminating)."""
    pods = json.loads(
        kubectl("get", "pods", "-n", ns, "-l", f"kaci.dev/webservice={NAME}", "-o", "json")
    )["items"]
    return sum(
        1
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    )


def wait_replicas(ns: str, n: int, timeout_s: float = 600) -> None:
    """n Pods Ready and no more (old ones gone)."""
    wait_until(
        lambda: ready_pods(ns) == n and total_pods(ns) == n, f"{n} ready replicas", timeout_s
    )


def total_pods(ns: str) -> int:
    out = kubectl("get", "pods", "-n", ns, "-l", f"kaci.dev/webservice={NAME}", "-o", "name")
    return len(out.split())


def cluster_ip_url(ns: str) -> str:
    svc = json.loads(kubectl("get", "service", NAME, "-n", ns, "-o", "json"))
    return f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}/score"


def scoring_uri(ns: str) -> str:
    ws = json.loads(kubectl("get", "webservice", NAME, "-n", ns, "-o", "json"))
    return str(ws.get("status", {}).get("scoringUri") or "")


def metrics_api_available() -> bool:
    try:
        out = kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json")
    except RuntimeError:
        return False
    conds = json.loads(out).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conds)


# ---------------------------------------------------------------- load

RESULT = re.compile(r"KACI_RESULT (.*)")


def wrk_args(url: str, connections: int, seconds: float) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(POST_LUA), url]


def wrk(url: str, body_file: Path, connections: int, seconds: float) -> dict[str, float]:
    """One wrk run: rps, p50_ms, p99_ms, requests, non2xx, errors (post.lua's summary)."""
    proc = subprocess.run(
        wrk_args(url, connections, seconds),
        env={**os.environ, "BODY_FILE": str(body_file)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    match = RESULT.search(proc.stdout)
    if not match:
        raise RuntimeError(f"wrk printed no result: {proc.stdout}\n{proc.stderr}")
    return {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}


def check_answer(url: str, body: bytes) -> None:
    """One POST must give the tutorial's 5 predictions before anything is timed."""
    import urllib.request

    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        got = json.loads(resp.read())
    if not (isinstance(got, list) and len(got) == 5):
        raise RuntimeError(f"{url} answered {got!r}, not 5 predictions")


# ---------------------------------------------------------------- parts


def replica_sweep(ns: str, body_file: Path, seconds: float) -> list[dict[str, Any]]:
    rows = []
    for n in (1, 2, 4):
        kubectl(
            "patch", "webservice", NAME, "-n", ns, "--type=merge",
            "-p", json.dumps({"spec": {"deploymentConfig": {"replicas": n}}}),
        )  # fmt: skip
        wait_replicas(ns, n)
        url = cluster_ip_url(ns)
        wait_until(partial(answers, url, body_file.read_bytes()), url, 120, 1)
        wrk(url, body_file, 8, 3)  # warm-up: connections, caches
        res = wrk(url, body_file, 8, seconds)
        print(f"  {n} replica(s): {res['rps']:.0f} req/s, p99 {res['p99_ms']:.1f} ms", flush=True)
        rows.append({"replicas": n, "connections": 8, "seconds": seconds, **res})
    return rows


def ingress_vs_cluster_ip(ns: str, body_file: Path, seconds: float) -> dict[str, Any]:
    kubectl(
        "patch", "webservice", NAME, "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"deploymentConfig": {"replicas": 1}}}),
    )  # fmt: skip
    wait_replicas(ns, 1)
    uri = wait_until(lambda: scoring_uri(ns).startswith(INGRESS_BASE_URL) and scoring_uri(ns),
                     "status.scoringUri on the Ingress", 120)  # fmt: skip
    direct = cluster_ip_url(ns)
    body = body_file.read_bytes()
    for url in (direct, uri):
        wait_until(partial(answers, url, body), url, 120, 1)
    out: dict[str, Any] = {"scoringUri": uri, "clusterIP": direct, "connections": 1}
    # Interleaved, twice each, so a change in background load hits both alike.
    runs: dict[str, list[dict[str, float]]] = {"clusterIP": [], "ingress": []}
    for _ in range(2):
        runs["clusterIP"].append(wrk(direct, body_file, 1, seconds))
        runs["ingress"].append(wrk(uri, body_file, 1, seconds))
    for key, rs in runs.items():
        out[key] = {
            "p50_ms": min(r["p50_ms"] for r in rs),
            "p99_ms": min(r["p99_ms"] for r in rs),
            "rps": max(r["rps"] for r in rs),
            "non2xx": sum(r["non2xx"] for r in rs),
            "runs": rs,
        }
    out["added_p50_ms"] = round(out["ingress"]["p50_ms"] - out["clusterIP"]["p50_ms"], 3)
    out["added_p99_ms"] = round(out["ingress"]["p99_ms"] - out["clusterIP"]["p99_ms"], 3)
    print(f"  ingress adds {out['added_p50_ms']:.2f} ms at p50, {out['added_p99_ms']:.2f} at p99")
    return out


def answers(url: str, body: bytes) -> bool:
    """True once url gives the 5 predictions (False while not routed yet: 404,
    connection refused, a replica still starting)."""
    try:
        check_answer(url, body)
    except Exception:
        return False
    return True


def hpa_reaction(ns: str, body_file: Path, max_load_s: float) -> dict[str, Any]:
    if not metrics_api_available():
        return {
            "measured": False,
            "why": "metrics.k8s.io is not Available (no metrics-server, or an apiserver "
            "without the aggregation layer)",
        }
    autoscale = {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": 2,
        "targetUtilization": 30,
        "refreshSeconds": 1,
    }
    patch = {"spec": {"deploymentConfig": {"replicas": None, "autoscale": autoscale}}}
    kubectl("patch", "webservice", NAME, "-n", ns, "--type=merge", "-p", json.dumps(patch))
    wait_until(lambda: _ok(lambda: kubectl("get", "hpa", NAME, "-n", ns)), "the HPA", 120)
    # The HPA acts only once it reads the Pods' CPU: wait for a current metric.
    wait_until(
        lambda: kubectl(
            "get", "hpa", NAME, "-n", ns,
            "-o", "jsonpath={.status.currentMetrics[0].resource.current.averageUtilization}",
        ).strip(),
        "the HPA's first CPU reading", 180, 2,
    )  # fmt: skip
    wait_replicas(ns, 1)
    url = cluster_ip_url(ns)
    load = subprocess.Popen(
        wrk_args(url, 8, max_load_s),
        env={**os.environ, "BODY_FILE": str(body_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t0 = time.monotonic()
    try:
        wait_until(lambda: ready_pods(ns) >= 2, "the second replica Ready", max_load_s, 0.5)
        out_s = time.monotonic() - t0
    finally:
        stop(load)
    t1 = time.monotonic()
    print(f"  HPA: 2nd replica Ready {out_s:.1f} s after the load started", flush=True)
    wait_replicas(ns, 1, timeout_s=900)
    in_s = time.monotonic() - t1
    print(f"  HPA: back to 1 replica {in_s:.1f} s after the load stopped", flush=True)
    hpa = json.loads(kubectl("get", "hpa", NAME, "-n", ns, "-o", "json"))
    return {
        "measured": True,
        "autoscale": autoscale,
        "scale_out_s": round(out_s, 1),
        "scale_in_s": round(in_s, 1),
        "hpa_behavior": hpa["spec"].get("behavior"),
    }


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=15, help="seconds of load per cell")
    ap.add_argument("--hpa-max-load-s", type=float, default=300)
    ap.add_argument("--skip-hpa", action="store_true")
    ap.add_argument("--keep", action="store_true", help="leave the namespace")
    args = ap.parse_args()

    ns = f"t-add-bench-{secrets.token_hex(3)}"
    instance = f"bench-serving-{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="kaci-bench-serving-"))
    log = work / "operator.log"
    results: dict[str, Any] = {
        "namespace": ns,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    results["load_before"] = os.getloadavg()
    op = start_operator(instance, log)
    try:
        body = prepare_namespace(ns, work / "model")
        body_file = work / "body.json"
        body_file.write_bytes(body)
        kubectl(
            "apply", "-n", ns, "-f", "-", stdin=json.dumps(webservice(instance, {"replicas": 1}))
        )
        print(f"namespace {ns}: waiting for the Webservice (build + start)", flush=True)
        kubectl("wait", "--for=condition=Ready", f"webservice/{NAME}", "-n", ns, "--timeout=900s",
                timeout=960)  # fmt: skip
        print("replicas (ClusterIP, 8 connections):", flush=True)
        results["replicas"] = replica_sweep(ns, body_file, args.seconds)
        print("ingress vs ClusterIP (1 replica, 1 connection):", flush=True)
        results["ingress"] = ingress_vs_cluster_ip(ns, body_file, args.seconds)
        if args.skip_hpa:
            results["hpa"] = {"measured": False, "why": "--skip-hpa"}
        else:
            print("HPA (min 1, max 2, target 30 % CPU):", flush=True)
            results["hpa"] = hpa_reaction(ns, body_file, args.hpa_max_load_s)
    finally:
        stop(op)
        results["load_after"] = os.getloadavg()
        if not args.keep:
            kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"serving-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"results: {out} (operator log {log})")
    return 0


def table(r: dict[str, Any]) -> str:
    lines = [
        f"Run {r['started']}; load average before {r['load_before'][0]:.2f}, "
        f"after {r['load_after'][0]:.2f}.",
        "",
        "| replicas | req/s | p50 ms | p99 ms | non-2xx |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in r.get("replicas", []):
        lines.append(
            f"| {row['replicas']} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} "
            f"| {row['non2xx']:.0f} |"
        )
    ing = r.get("ingress")
    if ing:
        lines += [
            "",
            "| path (1 replica, 1 connection) | req/s | mean ms | p50 ms | p99 ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for key in ("clusterIP", "ingress"):
            v = ing[key]
            # One connection: the mean latency is the inverse of the rate.
            lines.append(
                f"| {key} | {v['rps']:,.0f} | {1000 / v['rps']:.2f} | {v['p50_ms']:.2f} "
                f"| {v['p99_ms']:.2f} |"
            )
        added_mean = 1000 / ing["ingress"]["rps"] - 1000 / ing["clusterIP"]["rps"]
        lines.append(
            f"| added by the Ingress | | {added_mean:+.2f} | {ing['added_p50_ms']:+.2f} "
            f"| {ing['added_p99_ms']:+.2f} |"
        )
    hpa = r.get("hpa", {})
    lines.append("")
    if hpa.get("measured"):
        lines.append(
            f"HPA: second replica Ready {hpa['scale_out_s']} s after the load started; "
            f"back to one replica {hpa['scale_in_s']} s after it stopped."
        )
    else:
        lines.append(f"HPA: not measured ({hpa.get('why', 'not run')}).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
