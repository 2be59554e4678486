"""Seconds from `kubectl apply` to Ready for the three Azure deploy options, on the local
cluster: cold (the dependency layer rebuilt too), new image (only score.py changed, the
dependency layer comes from the engine's cache) and warm (the image is in the registry).

    .venv/bin/python bench/deploy/run.py [--options 1,2,3] [--repeat N] [--cpu-cores 0.25] [--keep]

It starts its own operator (`python -m kaci.operator`, stopped by PID at the end) that
handles only objects labelled with its instance name, in a fresh namespace.

Besides the total, every run is split into phases from what `kubectl get -w` and
`docker events` show (the moment each change reaches a watcher): the Model stored
(option 1), the Image waiting for it, the build (Image Running -> the engine tags the
image), the push (-> Image Succeeded: push, registry look-up, status; for a warm deploy
just the registry look-up that finds the image), the hand-off to the Pod (Image
Succeeded -> Pod created: Webservice reconcile, Deployment, ReplicaSet), the Pod's start
(created -> container running: sandbox, image pull + unpack, start), the scoring
server's start (running -> Pod Ready: Python imports, init(), readiness probe) and
status propagation (Pod Ready -> Webservice Ready seen by `kubectl wait`). Also read
back: the scoring image's size (as the engine holds it, and compressed as pushed) and
the seconds the runtime logged for init() (score.py's imports and model load, a part
of "server start").
Results: a table on stdout and JSON in bench/results/deploy-<time>.json.
"""

from __future__ import annotations

import argparse
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
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "examples" / "mnist"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = str(ROOT / ".cluster" / "bin" / "kubectl")
API = "kaci.dev/v1alpha1"
REGISTRY = "127.0.0.1:5000"
PHASES = ("model", "image wait", "build", "push", "to pod", "pod start", "server start", "status")


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
    engine: EngineEvents,
    t0: float,
    t_end: float,
    ws: str,
    image: str,
    option: int,
) -> dict[str, float]:
    """Seconds per phase of one deploy (see the module docstring); missing ones are 0."""
    model = watches["models"].first(t0, ws, lambda o: _cond(o, "Ready")) if option == 1 else None
    running = watches["images"].first(t0, image, lambda o: _state(o) == "Running")
    tagged = engine.first(t0, "tag", image) if running else None
    built = watches["images"].first(t0, image, lambda o: _state(o) == "Succeeded")
    pods = watches["pods"]
    created = pods.first(t0, ws, lambda o: True)
    started = pods.first(t0, ws, _running)
    ready = pods.first(t0, ws, lambda o: _cond(o, "Ready"))
    marks = (model, running, tagged, built, created, started, ready, t_end)
    prev, out = t0, {}
    for phase, t in zip(PHASES, marks, strict=True):
        # a phase that did not happen (no Model, no build) takes no time; the next one
        # starts where the last one seen ended
        out[phase] = round(t - prev, 2) if t is not None else 0.0
        prev = t if t is not None else prev
    return out


def image_size(ns: str, image: str) -> dict[str, float]:
    """MB of the scoring image: as the engine holds it and compressed as pushed."""
    loc = json.loads(kubectl("get", "image", image, "-n", ns, "-o", "json"))["status"]
    location = str(loc["imageLocation"])  # host/repo@sha256:...
    repo, digest = location.split("/", 1)[1].split("@")
    req = urllib.request.Request(
        f"http://{REGISTRY}/v2/{repo}/manifests/{digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        manifest = json.load(resp)
    pushed = sum(int(layer["size"]) for layer in manifest["layers"])
    tag = f"{REGISTRY}/{repo}:{loc['contentHash'][:24]}"
    proc = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True, text=True
    )
    size = int(proc.stdout.strip()) if proc.returncode == 0 else 0
    return {"image MB": round(size / 1e6, 1), "pushed MB": round(pushed / 1e6, 1)}


class Run:
    def __init__(
        self, ns: str, instance: str, watches: dict[str, Watch], engine: EngineEvents
    ) -> None:
        self.ns, self.instance, self.watches, self.engine = ns, instance, watches, engine

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
            out["warm"] = run.timed(option, name, *docs)
        for d in reversed(docs):
            run.delete(d["kind"].lower(), d["metadata"]["name"])
    return out


def median_runs(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """The median of every figure over repeated runs of one option."""
    return {
        label: {k: round(statistics.median(r[label][k] for r in runs), 2) for k in runs[0][label]}
        for label in runs[0]
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--options", default="1,2,3")
    p.add_argument("--repeat", type=int, default=1, help="runs per option (medians reported)")
    p.add_argument(
        "--cpu-cores",
        type=float,
        default=0.25,
        help="the Webservices' cpuCores (the Pod's CPU limit: Python's imports run under it)",
    )
    p.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    args = p.parse_args()
    global CPU_CORES
    CPU_CORES = args.cpu_cores
    load = os.getloadavg()
    ns, instance = f"bench-deploy-{secrets.token_hex(3)}", f"bench-{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="kaci-bench-deploy-"))
    subprocess.run(
        [sys.executable, str(MNIST / "train.py"), "--out", str(work)],
        check=True,
        capture_output=True,
    )
    log = (work / "operator.log").open("wb")
    env = {
        **os.environ,
        "KUBECONFIG": str(KUBECONFIG),
        "KACI_OPERATOR_INSTANCE": instance,
        "KACI_DEFAULT_BASE_IMAGE": "127.0.0.1:5000/kaci/python:3.11",
        "KACI_PIP_FIND_LINKS": "/wheels",
        "KACI_PIP_NO_INDEX": "true",
    }
    op = subprocess.Popen(
        [sys.executable, "-m", "kaci.operator"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    results: dict[int, dict[str, dict[str, float]]] = {}
    all_runs: dict[int, list[dict[str, dict[str, float]]]] = {}
    watches: dict[str, Watch] = {}
    engine: EngineEvents | None = None
    try:
        kubectl("create", "namespace", ns)
        watches = {k: Watch(ns, k) for k in ("models", "images", "pods")}
        engine = EngineEvents()
        kubectl(
            "create",
            "configmap",
            "mnist-model",
            "-n",
            ns,
            f"--from-file={work / 'sklearn_mnist_model.pkl'}",
        )
        kubectl(
            "create", "configmap", "mnist-scoring", "-n", ns, f"--from-file={MNIST / 'myenv.yml'}"
        )
        run = Run(ns, instance, watches, engine)
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
        # their dependency layer in the engine's cache, as after any earlier deploy.
        warmup = {
            "apiVersion": API,
            "kind": "Image",
            "metadata": {"name": "warmup"},
            "spec": {"models": [{"name": "sklearn_mnist"}], **image_config("warmup", False)},
        }
        run.apply(warmup)
        run.ready("image", "warmup")
        for option in (int(o) for o in args.options.split(",")):
            for _ in range(args.repeat):
                r = measure(run, option)
                all_runs.setdefault(option, []).append(r)
                print(f"option {option}: {json.dumps(r)}", file=sys.stderr, flush=True)
            results[option] = median_runs(all_runs[option])
    finally:
        for w in watches.values():
            w.stop()
        if engine is not None:
            engine.stop()
        op.send_signal(signal.SIGTERM)
        try:
            op.wait(timeout=30)
        except subprocess.TimeoutExpired:
            op.kill()
        if not args.keep:
            kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")
    names = {
        1: "1 modelFiles (deploy)",
        2: "2 models (deploy_from_model)",
        3: "3 image (deploy_from_image)",
    }
    load_end = os.getloadavg()
    print(f"{'option':32} {'cold s':>8} {'new image s':>12} {'warm s':>8}")
    for option, r in results.items():
        print(
            f"{names[option]:32} {r['cold']['total']:8.1f} {r['new image']['total']:12.1f}"
            f" {r['warm']['total']:8.1f}"
        )
    print("\nphases, seconds (medians of", args.repeat, "runs):")
    columns = (*PHASES, "init()")
    print(f"{'option / case':30}" + "".join(f"{p:>13}" for p in columns))
    for option, r in results.items():
        for label, figures in r.items():
            row = "".join(f"{figures[p]:13.2f}" for p in columns)
            print(f"{names[option][:18] + ' / ' + label:30}{row}")
    print("\nimage size, MB (engine / pushed compressed):")
    for option, r in results.items():
        for label in ("cold", "new image"):
            print(f"  {names[option]} {label}: {r[label]['image MB']} / {r[label]['pushed MB']}")
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
                "medians": results,
                "runs": all_runs,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
