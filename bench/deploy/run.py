"""Seconds from `kubectl apply` to Ready for the three Azure deploy options, on the local
cluster: cold (the dependency layer rebuilt too), new image (only score.py changed, the
dependency layer comes from the builder's cache) and warm (the image is in the registry),
for each builder driver side by side in one run.

    .venv/bin/python bench/deploy/run.py [--drivers docker,buildkit] [--options 1,2,3]
        [--repeat N] [--cpu-cores 0.25] [--buildkit-addr ADDR] [--keep]

Per driver it starts its own operator (`python -m kaci.operator`, stopped by PID at the
end) that handles only objects labelled with its instance name, in a fresh namespace;
the drivers take turns, deploy by deploy, so a change in the machine's load hits both.
The buildkit driver uses `--buildkit-addr` (with `--buildkit-tls-dir` holding ca.crt,
tls.crt, tls.key for mTLS), or else a buildkitd of its own on this host
(tests/shared/hostbuildkit.py: rootful, a unix socket, a fresh cache).

Besides the total, every run is split into phases from what `kubectl get -w` and
`docker events` show (the moment each change reaches a watcher): the Model stored
(option 1), the Image waiting for it, the build (Image Running -> the engine tags the
image), the push (-> Image Succeeded: push, registry look-up, status; for a warm deploy
just the registry look-up that finds the image), the hand-off to the Pod (Image
Succeeded -> Pod created: Webservice reconcile, Deployment, ReplicaSet), the Pod's start
(scheduled -> container running: sandbox, image pull + unpack, start; "scheduling" is
created -> bound to the node, which waits when the node's CPU is all requested), the scoring
server's start (running -> Pod Ready: Python imports, init(), readiness probe) and
status propagation (Pod Ready -> Webservice Ready seen by `kubectl wait`). Also read
back: the scoring image's size (as the engine holds it, and compressed as pushed) and
the seconds the runtime logged for init() (score.py's imports and model load, a part
of "server start"). The buildkit driver has no `docker events`: its build and push are
one phase ("build": Image Running -> Succeeded).
Results: a table on stdout and JSON in bench/results/deploy-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kaci.registry import reference
from kaci.registry.client import Distribution

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "examples" / "mnist"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = str(ROOT / ".cluster" / "bin" / "kubectl")
API = "kaci.dev/v1alpha1"
REGISTRY = "127.0.0.1:5000"
PHASES = (
    "model",
    "image wait",
    "build",
    "push",
    "to pod",
    "scheduling",
    "pod start",
    "server start",
    "status",
)


def kubectl(*args: str, stdin: str | None = None, timeout: float = 1200) -> str:
    cmd = [KUBECTL, f"--kubeconfig={KUBECONFIG}", "--context=kaci-local", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


class Watch:
    """`kubectl get KIND -w -o json` in a thread: (arrival time, object) for every change."""

    def __init__(self, ns: str, kind: str) -> None:
        cmd = [KUBECTL, f"--kubeconfig={KUBECONFIG}", "--context=kaci-local", "get", kind]
        cmd += ["-n", ns, "-w", "-o", "json"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        dec, buf = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buf += line
            try:
                obj, end = dec.raw_decode(buf.lstrip())
            except json.JSONDecodeError:
                continue
            buf = buf.lstrip()[end:]
            with self.lock:
                self.seen.append((time.monotonic(), obj))

    def first(self, since: float, name: str, test: Any) -> float | None:
        """When an object called `name` first matched `test` after `since`; objects seen
        before `since` (the previous run's, still being deleted) do not count."""
        with self.lock:
            old = {_uid(obj) for t, obj in self.seen if t < since}
            for t, obj in self.seen:
                if (
                    t >= since
                    and _uid(obj) not in old
                    and not obj["metadata"].get("deletionTimestamp")
                    and _name_of(obj) == name
                    and test(obj)
                ):
                    return t
        return None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class EngineEvents:
    """`docker events` for images in a thread: when the engine tagged (end of the build)
    and pushed each image reference."""

    def __init__(self) -> None:
        fmt = '{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes "name"}}'
        cmd = ["docker", "events", "--filter", "type=image", "--format", fmt]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.seen: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            action, _, refs = line.strip().partition(" ")
            with self.lock:
                self.seen.append((time.monotonic(), action, refs))

    def first(self, since: float, action: str, image: str) -> float | None:
        with self.lock:
            for t, act, refs in self.seen:
                if t >= since and act == action and f"/{image}:" in refs:
                    return t
        return None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _uid(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("uid", ""))


def _name_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if obj.get("kind") == "Pod":
        return str(labels.get("kaci.dev/webservice", ""))
    return str(meta.get("name", ""))


def _cond(obj: dict[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def _state(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("state") or "")


def _running(pod: dict[str, Any]) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any("running" in (c.get("state") or {}) for c in statuses)


def phases(
    watches: dict[str, Watch],
    engine: EngineEvents | None,
    t0: float,
    t_end: float,
    ws: str,
    image: str,
    option: int,
) -> dict[str, float]:
    """Seconds per phase of one deploy (see the module docstring); missing ones are 0."""
    model = watches["models"].first(t0, ws, lambda o: _cond(o, "Ready")) if option == 1 else None
    running = watches["images"].first(t0, image, lambda o: _state(o) == "Running")
    built = watches["images"].first(t0, image, lambda o: _state(o) == "Succeeded")
    if engine is None:  # buildkit: build and push in one (no engine to watch)
        tagged = built if running else None
    else:
        tagged = engine.first(t0, "tag", image) if running else None
    pods = watches["pods"]
    created = pods.first(t0, ws, lambda o: True)
    scheduled = pods.first(t0, ws, lambda o: _cond(o, "PodScheduled"))
    started = pods.first(t0, ws, _running)
    ready = pods.first(t0, ws, lambda o: _cond(o, "Ready"))
    marks = (model, running, tagged, built, created, scheduled, started, ready, t_end)
    prev, out = t0, {}
    for phase, t in zip(PHASES, marks, strict=True):
        # a phase that did not happen (no Model, no build) takes no time; the next one
        # starts where the last one seen ended
        out[phase] = round(t - prev, 2) if t is not None else 0.0
        prev = t if t is not None else prev
    return out


def image_size(ns: str, image: str) -> dict[str, float]:
    """MB of the scoring image: as the engine holds it (docker driver) and compressed as
    pushed."""
    loc = json.loads(kubectl("get", "image", image, "-n", ns, "-o", "json"))["status"]
    location = str(loc["imageLocation"])  # host/repo@sha256:...
    repo = location.split("/", 1)[1].split("@")[0]
    ref = reference.parse(location)
    manifest = Distribution({}, [ref.host]).image_manifest(ref)
    pushed = sum(int(layer["size"]) for layer in manifest["layers"])
    tag = f"{REGISTRY}/{repo}:{loc['contentHash'][:24]}"
    proc = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True, text=True
    )
    size = int(proc.stdout.strip()) if proc.returncode == 0 else 0
    return {"image MB": round(size / 1e6, 1), "pushed MB": round(pushed / 1e6, 1)}


class Run:
    def __init__(
        self,
        driver: str,
        ns: str,
        instance: str,
        watches: dict[str, Watch],
        engine: EngineEvents | None,
        op: subprocess.Popen[bytes],
    ) -> None:
        self.driver, self.ns, self.instance = driver, ns, instance
        self.watches, self.engine, self.op = watches, engine, op

    def label(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc["metadata"].setdefault("labels", {})["kaci.dev/operator"] = self.instance
        return doc

    def apply(self, *docs: dict[str, Any]) -> None:
        kubectl(
            "apply",
            "-n",
            self.ns,
            "-f",
            "-",
            stdin="\n".join(json.dumps(self.label(d)) for d in docs),
        )

    def ready(self, kind: str, name: str) -> None:
        kubectl(
            "wait",
            "--for=condition=Ready",
            f"{kind}/{name}",
            "-n",
            self.ns,
            "--timeout=1200s",
            timeout=1300,
        )

    def timed(self, option: int, ws_name: str, *docs: dict[str, Any]) -> dict[str, float]:
        start = time.monotonic()
        self.apply(*docs)
        self.ready("webservice", ws_name)
        end = time.monotonic()
        time.sleep(0.5)  # let the watchers catch up with the last changes
        image = f"{ws_name}-img" if option == 3 else ws_name
        return {
            "total": round(end - start, 2),
            **phases(self.watches, self.engine, start, end, ws_name, image, option),
            "init()": self.init_seconds(ws_name),
        }

    def init_seconds(self, ws_name: str) -> float:
        """What the scoring runtime logged for init() (score.py's imports + model load)."""
        log = kubectl("logs", f"deployment/{ws_name}", "-n", self.ns, "--tail=50")
        found = re.search(r"init\(\) done in ([0-9.]+) s", log)
        return float(found.group(1)) if found else 0.0

    def pods_gone(self, ws_name: str) -> None:
        kubectl(
            "wait",
            "--for=delete",
            "pod",
            "-l",
            f"kaci.dev/webservice={ws_name}",
            "-n",
            self.ns,
            "--timeout=120s",
            timeout=130,
        )

    def delete(self, kind: str, name: str) -> None:
        kubectl("delete", kind, name, "-n", self.ns, "--wait=true")


def image_config(token: str, cold_deps: bool) -> dict[str, Any]:
    score = (MNIST / "score.py").read_text() + f"\n# bench {token}\n"
    cfg: dict[str, Any] = {
        "executionScript": {"inline": score},
        "runtime": "python",
        "condaFile": {"configMap": {"name": "mnist-scoring", "key": "myenv.yml"}},
    }
    if cold_deps:
        # a comment in requirements.txt: the dependency layer is rebuilt (pip install again)
        cfg["pipRequirements"] = [f"# bench {token}"]
    return cfg


CPU_CORES = 0.25  # --cpu-cores; the walkthrough's examples/mnist/webservices.yaml uses 0.25


def deployment_config() -> dict[str, Any]:
    return {"cpuCores": CPU_CORES, "memoryGb": 1}


def option_docs(option: int, name: str, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    if option == 1:
        spec = {
            "modelFiles": {"modelName": "sklearn_mnist", "configMap": {"name": "mnist-model"}},
            "imageConfig": cfg,
            "deploymentConfig": deployment_config(),
        }
        return [{"apiVersion": API, "kind": "Webservice", "metadata": {"name": name}, "spec": spec}]
    if option == 2:
        spec2: dict[str, Any] = {
            "models": [{"name": "sklearn_mnist"}],
            "imageConfig": cfg,
            "deploymentConfig": deployment_config(),
        }
        return [
            {"apiVersion": API, "kind": "Webservice", "metadata": {"name": name}, "spec": spec2}
        ]
    image = {
        "apiVersion": API,
        "kind": "Image",
        "metadata": {"name": f"{name}-img"},
        "spec": {"models": [{"name": "sklearn_mnist"}], **cfg},
    }
    ws = {
        "apiVersion": API,
        "kind": "Webservice",
        "metadata": {"name": name},
        "spec": {"image": {"name": f"{name}-img"}, "deploymentConfig": deployment_config()},
    }
    return [image, ws]


def measure(run: Run, option: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for label, cold_deps in (("cold", True), ("new image", False)):
        name = f"bench-{option}-{secrets.token_hex(2)}"
        docs = option_docs(option, name, image_config(secrets.token_hex(4), cold_deps))
        out[label] = run.timed(option, name, *docs)
        out[label].update(image_size(run.ns, f"{name}-img" if option == 3 else name))
        if label == "new image":
            # warm: the same Webservice again; its image is in the registry already
            for d in reversed(docs):
                run.delete(d["kind"].lower(), d["metadata"]["name"])
            if WAIT_PODS_GONE:
                # as the SDK's Webservice.delete() does: the old Pod's CPU request is
                # released only when it has terminated (preStop, SIGTERM), and a new Pod
                # that does not fit beside it waits to be scheduled until then
                run.pods_gone(name)
            out["warm"] = run.timed(option, name, *docs)
        for d in reversed(docs):
            run.delete(d["kind"].lower(), d["metadata"]["name"])
        if WAIT_PODS_GONE:
            run.pods_gone(name)  # the next case does not wait for this one's CPU either
    return out


def median_runs(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """The median of every figure over repeated runs of one option."""
    return {
        label: {k: round(statistics.median(r[label][k] for r in runs), 2) for k in runs[0][label]}
        for label in runs[0]
    }


NAMES = {
    1: "1 modelFiles (deploy)",
    2: "2 models (deploy_from_model)",
    3: "3 image (deploy_from_image)",
}


def builder_env(
    driver: str, args: argparse.Namespace, stack: contextlib.ExitStack
) -> dict[str, str]:
    """The operator's KACI_BUILDER* settings for `driver` (see the module docstring)."""
    if driver == "docker":
        return {"KACI_BUILDER": "docker"}
    env = {"KACI_BUILDER": "buildkit"}
    if args.buildkit_addr:
        env["KACI_BUILDKIT_ADDR"] = args.buildkit_addr
        if args.buildkit_tls_dir:
            tls = args.buildkit_tls_dir
            env |= {
                "KACI_BUILDKIT_TLS_CA": f"{tls}/ca.crt",
                "KACI_BUILDKIT_TLS_CERT": f"{tls}/tls.crt",
                "KACI_BUILDKIT_TLS_KEY": f"{tls}/tls.key",
            }
        if args.buildctl:
            env["KACI_BUILDCTL"] = args.buildctl
        return env
    sys.path.insert(0, str(ROOT / "tests" / "shared"))
    import hostbuildkit  # type: ignore[import-not-found,unused-ignore]

    folder = hostbuildkit.binaries()
    if folder is None:
        raise SystemExit(hostbuildkit.skip_reason())
    daemon = stack.enter_context(hostbuildkit.running(folder, [REGISTRY]))
    return {**env, "KACI_BUILDKIT_ADDR": daemon.addr, "KACI_BUILDCTL": daemon.buildctl}


def start(driver: str, work: Path, builder: dict[str, str], stack: contextlib.ExitStack) -> Run:
    """A namespace, an operator, the watchers and the shared inputs for one driver."""
    ns, instance = f"bench-deploy-{secrets.token_hex(3)}", f"bench-{secrets.token_hex(3)}"
    log = (work / f"operator-{driver}.log").open("wb")
    env = {
        **os.environ,
        "KUBECONFIG": str(KUBECONFIG),
        "KACI_OPERATOR_INSTANCE": instance,
        "KACI_DEFAULT_BASE_IMAGE": "127.0.0.1:5000/kaci/python:3.11",
        "KACI_PIP_FIND_LINKS": "/wheels",
        "KACI_PIP_NO_INDEX": "true",
        **builder,
    }
    op = subprocess.Popen(
        [sys.executable, "-m", "kaci.operator"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    kubectl("create", "namespace", ns)
    watches = {k: Watch(ns, k) for k in ("models", "images", "pods")}
    engine = EngineEvents() if driver == "docker" else None
    run = Run(driver, ns, instance, watches, engine, op)
    stack.callback(stop, run, stack)
    model = work / "sklearn_mnist_model.pkl"
    kubectl("create", "configmap", "mnist-model", "-n", ns, f"--from-file={model}")
    kubectl("create", "configmap", "mnist-scoring", "-n", ns, f"--from-file={MNIST / 'myenv.yml'}")
    run.apply(
        {
            "apiVersion": API,
            "kind": "Model",
            "metadata": {"name": "sklearn-mnist"},
            "spec": {
                "modelName": "sklearn_mnist",
                "source": {"configMap": {"name": "mnist-model"}},
            },
        }
    )
    run.ready("model", "sklearn-mnist")
    # Not timed: an Image with the plain requirements, so the "new image" runs find
    # their dependency layer in the builder's cache, as after any earlier deploy.
    warmup = {
        "apiVersion": API,
        "kind": "Image",
        "metadata": {"name": "warmup"},
        "spec": {"models": [{"name": "sklearn_mnist"}], **image_config("warmup", False)},
    }
    run.apply(warmup)
    run.ready("image", "warmup")
    return run


def stop(run: Run, stack: contextlib.ExitStack) -> None:
    for w in run.watches.values():
        w.stop()
    if run.engine is not None:
        run.engine.stop()
    run.op.send_signal(signal.SIGTERM)
    try:
        run.op.wait(timeout=30)
    except subprocess.TimeoutExpired:
        run.op.kill()
    if not KEEP:
        kubectl("delete", "namespace", run.ns, "--wait=false", "--ignore-not-found")


KEEP = False  # --keep
WAIT_PODS_GONE = True  # --no-wait-pods-gone


def report(results: dict[str, dict[int, dict[str, dict[str, float]]]], repeat: int) -> None:
    print(f"{'driver':9} {'option':32} {'cold s':>8} {'new image s':>12} {'warm s':>8}")
    for driver, by_option in results.items():
        for option, r in by_option.items():
            print(
                f"{driver:9} {NAMES[option]:32} {r['cold']['total']:8.1f}"
                f" {r['new image']['total']:12.1f} {r['warm']['total']:8.1f}"
            )
    print(f"\nphases, seconds (medians of {repeat} runs):")
    columns = (*PHASES, "init()")
    print(f"{'driver / option / case':38}" + "".join(f"{p:>13}" for p in columns))
    for driver, by_option in results.items():
        for option, r in by_option.items():
            for label, figures in r.items():
                row = "".join(f"{figures[p]:13.2f}" for p in columns)
                print(f"{driver + ' / ' + NAMES[option][:18] + ' / ' + label:38}{row}")
    print("\nimage size, MB (engine / pushed compressed):")
    for driver, by_option in results.items():
        for option, r in by_option.items():
            for label in ("cold", "new image"):
                print(
                    f"  {driver} {NAMES[option]} {label}: "
                    f"{r[label]['image MB']} / {r[label]['pushed MB']}"
                )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--drivers", default="docker,buildkit")
    p.add_argument("--options", default="1,2,3")
    p.add_argument("--repeat", type=int, default=1, help="runs per option (medians reported)")
    p.add_argument(
        "--cpu-cores",
        type=float,
        default=0.25,
        help="the Webservices' cpuCores (the Pod's CPU limit: Python's imports run under it)",
    )
    p.add_argument("--buildkit-addr", default=os.environ.get("KACI_BENCH_BUILDKIT_ADDR"))
    p.add_argument("--buildkit-tls-dir", default=os.environ.get("KACI_BENCH_BUILDKIT_TLS_DIR"))
    p.add_argument("--buildctl", default=os.environ.get("KACI_BENCH_BUILDCTL"))
    p.add_argument("--keep", action="store_true", help="keep the namespaces afterwards")
    p.add_argument(
        "--no-wait-pods-gone",
        action="store_true",
        help="warm: re-apply right after the delete, while the old Pod still terminates",
    )
    args = p.parse_args()
    global CPU_CORES, KEEP, WAIT_PODS_GONE
    CPU_CORES, KEEP, WAIT_PODS_GONE = args.cpu_cores, args.keep, not args.no_wait_pods_gone
    drivers = args.drivers.split(",")
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="kaci-bench-deploy-"))
    subprocess.run(
        [sys.executable, str(MNIST / "train.py"), "--out", str(work)],
        check=True,
        capture_output=True,
    )
    results: dict[str, dict[int, dict[str, dict[str, float]]]] = {d: {} for d in drivers}
    all_runs: dict[str, dict[int, list[dict[str, dict[str, float]]]]] = {d: {} for d in drivers}
    with contextlib.ExitStack() as stack:
        runs = {d: start(d, work, builder_env(d, args, stack), stack) for d in drivers}
        for option in (int(o) for o in args.options.split(",")):
            for _ in range(args.repeat):
                for driver, run in runs.items():  # side by side: the drivers take turns
                    r = measure(run, option)
                    all_runs[driver].setdefault(option, []).append(r)
                    print(f"{driver} option {option}: {json.dumps(r)}", file=sys.stderr, flush=True)
            for driver in drivers:
                results[driver][option] = median_runs(all_runs[driver][option])
    load_end = os.getloadavg()
    report(results, args.repeat)
    print(
        "\ncold: dependency layer rebuilt; new image: score.py changed, dependencies cached; "
        "warm: the image is already in the registry. Azure took 6-8 minutes."
    )
    print(f"cpuCores {CPU_CORES}; load average before {load[0]:.2f}, after {load_end[0]:.2f}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"deploy-{stamp}.json").write_text(
        json.dumps(
            {
                "load_before": load,
                "load_after": load_end,
                "repeat": args.repeat,
                "cpu_cores": CPU_CORES,
                "drivers": drivers,
                "medians": results,
                "runs": all_runs,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
