"""Operator scale on simulated nodes (issue #18): N Webservices on kwok's fake nodes,
where Pods turn Running and Ready without containers, so what is measured is the
operator and the control plane, not the one real node.

    make bench-scale-kwok                   # or: .venv/bin/python bench/scale/kwok.py
    BENCH_WEBSERVICES=100,1000 BENCH_MODELS=1000 BENCH_NODES=100 BENCH_REST_S=600

`hack/kwok.sh up` starts kwok's controller and BENCH_NODES fake nodes (tainted, so
only what asks lands there); the bench's operator (a subprocess, an instance label
of its own) puts its scoring Pods there with KACI_SCORING_NODE_SELECTOR and
KACI_SCORING_TOLERATIONS (the chart's serving.nodeSelector/tolerations). One shared
Image (built once, by the node's Docker Engine); every Webservice `image: {name}`.

For each N, from nothing:
- converge: create N Webservices, time until every Deployment exists ("applied")
  and every Webservice is Ready; objects per second;
- cost: the operator's CPU seconds (ms per Webservice) and peak RSS (/proc); its API
  requests (the API server's audit log: the admin user with the operator's user
  agents, kopf's and the Python client's; the bench's own client says
  "kaci-bench"), watches and lists apart; the watch events it handled (its
  kaci_operator_watch_events metric); the control plane's CPU and RSS (API server,
  etcd, controller-manager, scheduler, kwok);
- one update among N: a changed cpuCores on one Webservice, timed until its
  Deployment's Pod template carries it.
At the largest N, then:
- rest: BENCH_REST_S seconds with nothing changing, the operator's requests per
  minute beyond the watches;
- restart: the operator stopped and a new one started, timed until it has made one
  pass over every object (its kaci_operator_reconciles metric).
Then M Models of one content (BENCH_MODELS), to Ready, with the same costs.

Results: tables on stdout, JSON in bench/results/scale-kwok-<time>.json. With
BENCH_PROFILE=1, py-spy also samples the operator over each Webservices round
(bench/results/profile-webservices-<N>-<time>.txt; read it with bench/scale/profile.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # bench/scale/run.py, beside this file
    CONTEXT,
    DEADLINE_S,
    GROUP,
    INSTANCE_LABEL,
    KUBECONFIG,
    ROOT,
    SCORE,
    VERSION,
    Bench,
    Sampler,
    crds,
    log,
    operator,
    ready,
    wait_for,
)

CLUSTER = ROOT / ".cluster"
AUDIT = CLUSTER / "logs" / "audit.log"
KWOK = ROOT / "hack" / "kwok.sh"
ADMIN = "kaci-admin"
BENCH_AGENT = "kaci-bench/scale"
# The operator's clients: kopf's (watches, patches) and the kubernetes package's.
OPERATOR_AGENTS = ("kopf/", "OpenAPI-Generator/")
CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok")
PLACEMENT = {
    "KACI_SCORING_NODE_SELECTOR": json.dumps({"type": "kwok"}),
    "KACI_SCORING_TOLERATIONS": json.dumps(
        [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]
    ),
}
CPU_CORES, MEMORY_GB = 0.01, 0.1
# Creates in flight at once.
CREATORS = 8


def pid_of(name: str) -> int | None:
    try:
        pid = int((CLUSTER / "run" / f"{name}.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- what the API server saw ---------------------------------------------------------


@dataclass
class AuditMark:
    """A place in the audit log: requests after it are counted."""

    inode: int
    offset: int


def audit_mark() -> AuditMark:
    st = AUDIT.stat()
    return AuditMark(st.st_ino, st.st_size)


def operator_requests(mark: AuditMark) -> Counter[str]:
    """The operator's requests since `mark`, by "verb resource[/subresource]", with
    totals under "requests" (everything but watch and list) and "watch/list"."""
    counts: Counter[str] = Counter()
    st = AUDIT.stat()
    if st.st_ino != mark.inode:
        log("the audit log was rotated during the round: its counts are partial")
        mark = AuditMark(st.st_ino, 0)
    seen: set[str] = set()
    with AUDIT.open("rb") as f:
        f.seek(mark.offset)
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if (ev.get("user") or {}).get("username") != ADMIN:
                continue
            if not str(ev.get("userAgent", "")).startswith(OPERATOR_AGENTS):
                continue
            # A watch is logged when it starts and when it ends: count it once.
            if ev.get("auditID") in seen:
                continue
            seen.add(ev.get("auditID"))
            ref = ev.get("objectRef") or {}
            verb = str(ev.get("verb", ""))
            counts["watch/list" if verb in ("watch", "list") else "requests"] += 1
            sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
            counts[f"{verb} {ref.get('resource')}{sub}"] += 1
    return counts


# --- what the operator says about itself -----------------------------------------------


def scrape(port: int) -> dict[str, float]:
    """The operator's counters, summed over their labels: {metric name: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name = series.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            out[name] += float(value)
    return dict(out)


class Costs:
    """CPU, RSS and API requests of the operator and the control plane over a span."""

    def __init__(self, op: Sampler, port: int) -> None:
        self.op, self.port = op, port
        self.planes = {n: Sampler(p) for n in CONTROL_PLANE if (p := pid_of(n)) is not None}
        for s in self.planes.values():
            s.start()

    def stop(self) -> None:
        for s in self.planes.values():
            s.stop()

    @contextlib.contextmanager
    def span(self, objects: int, out: dict[str, Any]) -> Iterator[None]:
        mark, metrics0 = audit_mark(), scrape(self.port)
        self.op.reset_peak()
        cpu0 = self.op.cpu_s()
        planes0 = {}
        for name, s in self.planes.items():
            s.reset_peak()
            planes0[name] = s.cpu_s()
        yield
        cpu = self.op.cpu_s() - cpu0
        requests = operator_requests(mark)
        metrics1 = scrape(self.port)
        events = metrics1.get("kaci_operator_watch_events_total", 0) - metrics0.get(
            "kaci_operator_watch_events_total", 0
        )
        out.update(
            {
                "operator_cpu_s": round(cpu, 2),
                "operator_cpu_ms_per_object": round(1000 * cpu / objects, 1),
                "operator_peak_rss_mb": round(self.op.peak_rss / 2**20, 1),
                "api_requests": requests["requests"],
                "api_requests_per_object": round(requests["requests"] / objects, 2),
                "api_watch_list": requests["watch/list"],
                "api_by_verb": {k: v for k, v in sorted(requests.items()) if " " in k},
                "watch_events": int(events),
                "watch_events_per_object": round(events / objects, 2),
                "control_plane": {
                    name: {
                        "cpu_s": round(s.cpu_s() - planes0[name], 1),
                        "peak_rss_mb": round(s.peak_rss / 2**20),
                    }
                    for name, s in self.planes.items()
                },
            }
        )


# --- the rounds --------------------------------------------------------------------


def watch_until(
    what: str, list_fn: Any, done: Any, want: set[str], timeout_s: float = DEADLINE_S
) -> float:
    """Seconds until every name in `want` satisfies `done(obj)`, followed by a watch
    (a list, then its events from that resourceVersion; relisted when it expires), so
    waiting on 10,000 objects costs the API server one stream, not a list a second."""
    t0 = time.monotonic()
    good: set[str] = set()
    while True:
        listed = list_fn()
        items = listed["items"] if isinstance(listed, dict) else listed.items
        good = {name_of(o) for o in items if done(o)}
        rv = (
            listed["metadata"]["resourceVersion"]
            if isinstance(listed, dict)
            else (listed.metadata.resource_version)
        )
        try:
            for ev in watch.Watch().stream(list_fn, resource_version=rv, timeout_seconds=60):
                obj = ev["object"]
                if ev["type"] != "DELETED" and done(obj):
                    good.add(name_of(obj))
                if want <= good:
                    return time.monotonic() - t0
                if time.monotonic() - t0 > timeout_s:
                    raise TimeoutError(f"gave up waiting for {what}: {len(want - good)} left")
        except ApiException as e:
            if e.status != 410:  # expired: list again
                raise
        if want <= good:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"gave up waiting for {what}: {len(want - good)} left")


def name_of(obj: Any) -> str:
    return str(obj["metadata"]["name"] if isinstance(obj, dict) else obj.metadata.name)


def create_all(b: Bench, plural: str, kind: str, specs: dict[str, dict[str, Any]]) -> None:
    """Create the objects CREATORS at a time, as kubectl apply of a big folder or a
    GitOps sync would: one at a time, the bench's client would be the bound."""
    with ThreadPoolExecutor(CREATORS) as pool:
        for done in [pool.submit(b.create, plural, kind, n, s) for n, s in specs.items()]:
            done.result()


def ws_spec(cores: float = CPU_CORES) -> dict[str, Any]:
    return {
        "image": {"name": "img"},
        "deploymentConfig": {"cpuCores": cores, "memoryGb": MEMORY_GB},
    }


def cpu_of(deployment: client.V1Deployment) -> str | None:
    container = deployment.spec.template.spec.containers[0]
    return str(container.resources.limits.get("cpu")) if container.resources.limits else None


@contextlib.contextmanager
def profiled(pid: int, label: str) -> Iterator[Path | None]:
    """With BENCH_PROFILE=1: py-spy samples the operator over the span (its folded
    stacks in bench/results/, for bench/scale/profile.py); otherwise nothing."""
    spy = Path(sys.executable).parent / "py-spy"
    if os.environ.get("BENCH_PROFILE") != "1" or not spy.exists():
        yield None
        return
    out = ROOT / "bench" / "results" / f"profile-{label}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(spy), "record", "--pid", str(pid), "--rate", "50", "--format", "raw"]
    proc = subprocess.Popen([*cmd, "--nonblocking", "--threads", "--output", str(out)])
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
        proc.wait(timeout=60)
        log(f"profile: {out.relative_to(ROOT)}")


def webservices_round(b: Bench, costs: Costs, n: int) -> dict[str, Any]:
    names = [f"ws-{n}-{i}" for i in range(n)]
    result: dict[str, Any] = {"n": n}
    with costs.span(n, result), profiled(costs.op.pid, f"webservices-{n}"):
        t0 = time.monotonic()
        create_all(b, "webservices", "Webservice", {name: ws_spec() for name in names})
        result["create_s"] = round(time.monotonic() - t0, 2)
        want = set(names)
        deployments = functools.partial(b.apps.list_namespaced_deployment, b.ns)
        watch_until(f"{n} Deployments", deployments, lambda _: True, want)
        result["applied_s"] = round(time.monotonic() - t0, 2)
        watch_until(f"{n} Webservices Ready", b.lister("webservices"), ready, want)
        result["ready_s"] = round(time.monotonic() - t0, 2)
        result["per_second"] = round(n / result["ready_s"], 1)
    log(f"webservices: {summary(result)}")
    result["update_s"] = one_update(b, names[len(names) // 2])
    log(f"one update among {n}: {result['update_s']} s to its Deployment")
    return result


def one_update(b: Bench, name: str) -> float:
    """Seconds from a changed cpuCores to the Deployment's template carrying it."""
    patch = {"spec": {"deploymentConfig": {"cpuCores": CPU_CORES * 2}}}
    b.custom.patch_namespaced_custom_object(GROUP, VERSION, b.ns, "webservices", name, patch)
    took = wait_for(
        f"{name}'s new template",
        lambda: cpu_of(b.apps.read_namespaced_deployment(name, b.ns)) == "20m",
        every_s=0.02,
    )
    return round(took, 3)


def rest(b: Bench, costs: Costs, seconds: int, objects: int) -> dict[str, Any]:
    """Nothing changes for `seconds`: what the operator asks of the API server."""
    result: dict[str, Any] = {"seconds": seconds}
    with costs.span(objects, result):
        time.sleep(seconds)
    minutes = seconds / 60
    result["requests_per_minute"] = round(result["api_requests"] / minutes, 2)
    result["watch_list_per_minute"] = round(result["api_watch_list"] / minutes, 2)
    log(f"at rest {seconds} s: {result['requests_per_minute']} requests/min beyond watches")
    return result


def delete_all(b: Bench, plural: str) -> None:
    b.custom.delete_collection_namespaced_custom_object(
        GROUP, VERSION, b.ns, plural, label_selector=f"{INSTANCE_LABEL}={b.instance}"
    )


def teardown_webservices(b: Bench) -> float:
    """Delete every Webservice (one request); seconds until their Pods are gone."""
    delete_all(b, "webservices")

    def pods_gone() -> bool:
        # A selected page may hold fewer items than the limit, even none, with more
        # to come: only an empty page without a continue token means none are left.
        pods = b.core.list_namespaced_pod(b.ns, label_selector="kaci.dev/webservice", limit=1)
        return not pods.items and not pods.metadata._continue

    return round(wait_for("the Pods to go", pods_gone, every_s=2.0), 1)


def deployments_left(b: Bench) -> int:
    count, token = 0, None
    while True:
        page = b.apps.list_namespaced_deployment(
            b.ns, label_selector="kaci.dev/webservice", limit=500, _continue=token
        )
        count += len(page.items)
        token = page.metadata._continue
        if not token:
            return count


def deployments_coming_back(b: Bench, seconds: float = 30.0) -> int:
    """The most Deployments seen in the namespace in the `seconds` after a teardown:
    0 unless the operator still holds deleted Webservices (a relist that missed their
    DELETED events, what handlers/prune.py is for) and deploys them again."""
    most, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        most = max(most, deployments_left(b))
        time.sleep(2.0)
    if most:
        log(f"after the teardown, {most} Deployments of deleted Webservices came back")
    return most


def models_round(b: Bench, costs: Costs, m: int) -> dict[str, Any]:
    result: dict[str, Any] = {"models": m}
    with costs.span(m, result):
        t0 = time.monotonic()
        spec = {"modelName": "bench-shared", "source": {"configMap": {"name": "factor"}}}
        create_all(b, "models", "Model", {f"m-{i}": spec for i in range(m)})
        result["create_s"] = round(time.monotonic() - t0, 2)

        want = {f"m-{i}" for i in range(m)}
        watch_until(f"{m} Models Ready", b.lister("models"), ready, want)
        result["ready_s"] = round(time.monotonic() - t0, 2)
        result["per_second"] = round(m / result["ready_s"], 1)
    log(f"models: {summary(result)}")
    return result


def restart(instance: str, objects: int, gate: str = "kaci") -> dict[str, Any]:
    """A new operator over `objects` objects: seconds until it has made a pass over
    each (its reconciles counter), with its CPU and API requests until then. `gate`
    "kopf": with kopf's start-up gate as released (kaci.handlers.index_gate)."""
    port = free_port()
    mark = audit_mark()
    t0 = time.monotonic()
    env = {**operator_env(port), **({"KACI_INDEX_GATE": "kopf"} if gate == "kopf" else {})}
    with operator(instance, env) as proc:
        sampler = Sampler(proc.pid)
        sampler.start()
        wait_for("the new operator's /metrics", lambda: metrics_up(port), every_s=0.2)

        def passed_over_all() -> bool:
            try:
                passes = scrape(port).get("kaci_operator_reconciles_total", 0)
            except OSError:  # its loop is busy with the initial lists: not yet
                return False
            return passes >= objects

        wait_for(f"a pass over {objects} objects", passed_over_all, every_s=0.2)
        requests = operator_requests(mark)
        result = {
            "gate": gate,
            "objects": objects,
            "seconds": round(time.monotonic() - t0, 1),
            "operator_cpu_s": round(sampler.cpu_s(), 2),
            "operator_rss_mb": round(sampler.rss() / 2**20, 1),
            "api_requests": requests["requests"],
            "api_watch_list": requests["watch/list"],
        }
        sampler.stop()
    log(f"restart over {objects} objects ({gate}'s gate): {result['seconds']} s")
    return result


def metrics_up(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def operator_env(port: int) -> dict[str, str]:
    return {**PLACEMENT, "KACI_METRICS_PORT": str(port)}


def summary(r: dict[str, Any]) -> str:
    keys = ("ready_s", "per_second", "operator_cpu_ms_per_object", "api_requests_per_object")
    return ", ".join(f"{k}={r.get(k)}" for k in keys)


def tables(results: dict[str, Any]) -> str:
    lines = [
        "| Webservices | applied (s) | Ready (s) | per s | op CPU ms/ws | op peak RSS MB "
        "| API req/ws | watch+list | watch events/ws | one update (s) "
        "| apiserver CPU s | etcd CPU s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["webservices"]:
        cp = r["control_plane"]
        lines.append(
            f"| {r['n']} | {r['applied_s']} | {r['ready_s']} | {r['per_second']} "
            f"| {r['operator_cpu_ms_per_object']} | {r['operator_peak_rss_mb']} "
            f"| {r['api_requests_per_object']} | {r['api_watch_list']} "
            f"| {r['watch_events_per_object']} | {r['update_s']} "
            f"| {cp.get('kube-apiserver', {}).get('cpu_s')} | {cp.get('etcd', {}).get('cpu_s')} |"
        )
    rounds = results["webservices"]
    back = [(r["n"], r["deployments_back"]) for r in rounds if "deployments_back" in r]
    if back:
        lines.append(
            "\nafter each teardown, Deployments of deleted Webservices seen again in 30 s: "
            + ", ".join(f"{n} Webservices: {k}" for n, k in back)
        )
    for r in results["models"]:
        lines += [
            "",
            "| Models | Ready (s) | per s | op CPU ms/model | API req/model | watch events/model |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {r['models']} | {r['ready_s']} | {r['per_second']} "
            f"| {r['operator_cpu_ms_per_object']} | {r['api_requests_per_object']} "
            f"| {r['watch_events_per_object']} |",
        ]
    if results.get("rest"):
        r = results["rest"]
        lines.append(
            f"\nat rest over {r['seconds']} s: {r['requests_per_minute']} requests/min "
            f"beyond the watches, {r['watch_list_per_minute']} watch+list/min"
        )
    for key in ("restart", "restart_kopf_gate"):
        if results.get(key):
            r = results[key]
            lines.append(
                f"restart ({r['gate']}'s start-up gate): a pass over all {r['objects']} objects "
                f"{r['seconds']} s after start ({r['operator_cpu_s']} CPU s, "
                f"{r['operator_rss_mb']} MB)"
            )
    return "\n".join(lines)


def main() -> int:
    sizes = [int(x) for x in os.environ.get("BENCH_WEBSERVICES", "100,1000").split(",") if x]
    n_models = int(os.environ.get("BENCH_MODELS", "1000"))
    nodes = int(os.environ.get("BENCH_NODES", "100"))
    rest_s = int(os.environ.get("BENCH_REST_S", "600"))
    crds()
    subprocess.run([str(KWOK), "up", str(nodes)], check=True)
    api = config.new_client_from_config(config_file=str(KUBECONFIG), context=CONTEXT)  # type: ignore[no-untyped-call]
    api.user_agent = BENCH_AGENT
    core = client.CoreV1Api(api)
    token = secrets.token_hex(3)
    ns, instance = f"kaci-bench-kwok-{token}", f"bench-{token}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels={"kaci.dev/test": "true"}))
    )
    wait_for(
        "the default ServiceAccount", lambda: bool(core.list_namespaced_service_account(ns).items)
    )
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "nodes": nodes,
        "load_before": Path("/proc/loadavg").read_text().split()[:3],
        "webservices": [],
        "models": [],
    }
    port = free_port()
    try:
        with operator(instance, operator_env(port)) as proc:
            sampler = Sampler(proc.pid)
            sampler.start()
            wait_for("the operator's /metrics", lambda: metrics_up(port), every_s=0.2)
            costs = Costs(sampler, port)
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
            for i, n in enumerate(sizes):
                results["webservices"].append(webservices_round(b, costs, n))
                if i < len(sizes) - 1:
                    results["webservices"][-1]["teardown_s"] = teardown_webservices(b)
                    results["webservices"][-1]["deployments_back"] = deployments_coming_back(b)
            objects = sizes[-1] + 2  # the Webservices, the shared Image and Model
            if rest_s:
                results["rest"] = rest(b, costs, rest_s, objects)
            if proc.poll() is not None:
                raise RuntimeError(f"the operator exited ({proc.returncode})")
            sampler.stop()
            costs.stop()
        results["restart"] = restart(instance, objects)
        if os.environ.get("BENCH_RESTART_KOPF_GATE", "1") == "1":
            results["restart_kopf_gate"] = restart(instance, objects, gate="kopf")
        port = free_port()
        with operator(instance, operator_env(port)) as proc:
            sampler = Sampler(proc.pid)
            sampler.start()
            wait_for("the operator's /metrics", lambda: metrics_up(port), every_s=0.2)
            costs = Costs(sampler, port)
            results["webservices"][-1]["teardown_s"] = teardown_webservices(b)
            results["webservices"][-1]["deployments_back"] = deployments_coming_back(b)
            if n_models:
                results["models"].append(models_round(b, costs, n_models))
                delete_all(b, "models")
            sampler.stop()
            costs.stop()
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(ns)
        subprocess.run([str(KWOK), "down"], check=False)
    results["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    out = ROOT / "bench" / "results" / f"scale-kwok-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(tables(results))
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
