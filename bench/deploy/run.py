"""Seconds from `kubectl apply` to Ready for the three Azure deploy options, on the local
cluster: cold (the dependency layer rebuilt too), new image (only score.py changed, the
dependency layer comes from the engine's cache) and warm (the image is in the registry).

    .venv/bin/python bench/deploy/run.py [--options 1,2,3] [--keep]

It starts its own operator (`python -m kaci.operator`, stopped by PID at the end) that
handles only objects labelled with its instance name, in a fresh namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "examples" / "mnist"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = str(ROOT / ".cluster" / "bin" / "kubectl")
API = "kaci.dev/v1alpha1"


def kubectl(*args: str, stdin: str | None = None, timeout: float = 1200) -> str:
    cmd = [KUBECTL, f"--kubeconfig={KUBECONFIG}", "--context=kaci-local", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


class Run:
    def __init__(self, ns: str, instance: str) -> None:
        self.ns, self.instance = ns, instance

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

    def timed(self, ws_name: str, *docs: dict[str, Any]) -> float:
        start = time.monotonic()
        self.apply(*docs)
        self.ready("webservice", ws_name)
        return time.monotonic() - start

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


def deployment_config() -> dict[str, Any]:
    return {"cpuCores": 0.25, "memoryGb": 1}


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


def measure(run: Run, option: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, cold_deps in (("cold", True), ("new image", False)):
        name = f"bench-{option}-{secrets.token_hex(2)}"
        docs = option_docs(option, name, image_config(secrets.token_hex(4), cold_deps))
        out[label] = run.timed(name, *docs)
        if label == "new image":
            # warm: the same Webservice again; its image is in the registry already
            for d in reversed(docs):
                run.delete(d["kind"].lower(), d["metadata"]["name"])
            out["warm"] = run.timed(name, *docs)
        for d in reversed(docs):
            run.delete(d["kind"].lower(), d["metadata"]["name"])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--options", default="1,2,3")
    p.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    args = p.parse_args()
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
    results: dict[int, dict[str, float]] = {}
    try:
        kubectl("create", "namespace", ns)
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
        run = Run(ns, instance)
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
        for option in (int(o) for o in args.options.split(",")):
            results[option] = measure(run, option)
            print(f"option {option}: {results[option]}", file=sys.stderr, flush=True)
    finally:
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
    print(f"{'option':32} {'cold s':>8} {'new image s':>12} {'warm s':>8}")
    for option, r in results.items():
        print(f"{names[option]:32} {r['cold']:8.1f} {r['new image']:12.1f} {r['warm']:8.1f}")
    print(
        "cold: dependency layer rebuilt; new image: score.py changed, dependencies cached; "
        "warm: the image is already in the registry. Azure took 6-8 minutes."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
