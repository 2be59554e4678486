"""API requests and operator CPU per Webservice deployed, per deploy option, for one
or more operator source trees side by side (e.g. before and after a change).

    .venv/bin/python bench/api/run.py                       # this tree
    .venv/bin/python bench/api/run.py --tree before=/tmp/kaci-old --tree after=.
    BENCH_N=3 (Webservices per option)

For each tree and each option (1: modelFiles, 2: a registered Model, 3: a built
Image) it starts that tree's operator as a subprocess watching one fresh namespace
(standalone, an operator instance label of its own), applies N Webservices of the
option with kubectl, waits for all to be Ready, lets it settle for 10 s, and counts
the operator's requests in the API server's audit log (.cluster/logs/audit.log: the
admin user's requests in that namespace, without kubectl's). Watches and lists are
counted apart: they are per kind, not per object. CPU is the operator process's
user+system time from /proc, from the moment its watches are up to the end.

Results: a table on stdout, JSON in bench/results/api-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / ".cluster"
AUDIT = CLUSTER / "logs" / "audit.log"
KUBECTL = str(CLUSTER / "bin" / "kubectl")
ENV = {**os.environ, "KUBECONFIG": str(CLUSTER / "kubeconfig")}
CLK_TCK = os.sysconf("SC_CLK_TCK")
EXAMPLES = ROOT / "examples" / "mnist"
ADMIN = "kaci-admin"


def kubectl(*args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [KUBECTL, *args], input=stdin, env=ENV, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr}")
    return out.stdout


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def objects(option: int, n: int, instance: str) -> list[dict[str, Any]]:
    """The option's objects for N Webservices, labelled for the bench's operator."""
    docs = {
        d["metadata"]["name"]: d
        for f in ("model.yaml", "image.yaml", "webservices.yaml")
        for d in yaml.safe_load_all((EXAMPLES / f).read_text())
        if d
    }
    template = docs[f"aci-mnist-{option}"]
    out: list[dict[str, Any]] = []
    if option >= 2:
        out.append(docs["sklearn-mnist"])
    if option == 3:
        out.append(docs["myimage1"])
    for i in range(n):
        ws = json.loads(json.dumps(template))
        ws["metadata"]["name"] = f"ws{option}-{i}"
        ws["spec"]["deploymentConfig"]["cpuCores"] = 0.05
        ws["spec"]["deploymentConfig"]["memoryGb"] = 0.25
        out.append(ws)
    for d in out:
        d["metadata"].setdefault("labels", {})["kaci.dev/operator"] = instance
    return out


def audit_offset() -> int:
    return AUDIT.stat().st_size if AUDIT.exists() else 0


def count_requests(offset: int, namespace: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    with AUDIT.open("rb") as f:
        f.seek(offset)
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if (ev.get("user") or {}).get("username") != ADMIN:
                continue
            if str(ev.get("userAgent", "")).startswith("kubectl"):
                continue
            ref = ev.get("objectRef") or {}
            if ref.get("namespace") != namespace:
                continue
            verb = ev.get("verb", "")
            kind = "watch/list" if verb in ("watch", "list") else "request"
            counts[kind] += 1
            sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
            counts[f"{verb} {ref.get('resource')}{sub}"] += 1
    return counts


def run_option(tree: Path, option: int, n: int, model_dir: Path) -> dict[str, Any]:
    ns = f"bench-api-{option}-{secrets.token_hex(3)}"
    instance = f"bench-api-{secrets.token_hex(3)}"
    kubectl("create", "namespace", ns)
    try:
        kubectl(
            "create",
            "configmap",
            "mnist-model",
            f"--from-file={model_dir / 'sklearn_mnist_model.pkl'}",
            "-n",
            ns,
        )
        kubectl(
            "create",
            "configmap",
            "mnist-scoring",
            f"--from-file={EXAMPLES / 'score.py'}",
            f"--from-file={EXAMPLES / 'myenv.yml'}",
            "-n",
            ns,
        )
        env = {
            **ENV,
            "PYTHONPATH": f"{tree / 'operator'}:{tree / 'scoring-runtime'}",
            "KACI_OPERATOR_INSTANCE": instance,
            "KACI_DEFAULT_BASE_IMAGE": "127.0.0.1:5000/kaci/python:3.11",
            "KACI_PIP_FIND_LINKS": "/wheels",
            "KACI_PIP_NO_INDEX": "true",
        }
        log = Path(tempfile.mkstemp(prefix="bench-api-", suffix=".log")[1])
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kaci.operator", "--namespace", ns],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd="/",
            )
        try:
            time.sleep(8)  # watches up, nothing to do yet
            offset, cpu0 = audit_offset(), cpu_s(proc.pid)
            t0 = time.monotonic()
            docs = objects(option, n, instance)
            kubectl(
                "apply", "-n", ns, "-f", "-", stdin="\n---\n".join(yaml.safe_dump(d) for d in docs)
            )
            names = [
                f"webservice/{d['metadata']['name']}" for d in docs if d["kind"] == "Webservice"
            ]
            kubectl("wait", "--for=condition=Ready", *names, "-n", ns, "--timeout=900s")
            ready_s = time.monotonic() - t0
            time.sleep(10)
            counts = count_requests(offset, ns)
            cpu = cpu_s(proc.pid) - cpu0
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        kubectl("delete", "namespace", ns, "--wait=false")
    return {
        "option": option,
        "webservices": n,
        "ready_s": round(ready_s, 1),
        "requests": counts["request"],
        "watch_list": counts["watch/list"],
        "requests_per_ws": round(counts["request"] / n, 1),
        "cpu_ms_per_ws": round(cpu * 1000 / n),
        "by_verb": {k: v for k, v in sorted(counts.items()) if " " in k},
        "log": str(log),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR")
    p.add_argument("--options", default="1,2,3")
    args = p.parse_args()
    trees = [t.split("=", 1) for t in args.tree] or [["this", str(ROOT)]]
    n = int(os.environ.get("BENCH_N", "3"))
    model_dir = Path(tempfile.mkdtemp(prefix="bench-api-model-"))
    subprocess.run(
        [sys.executable, str(EXAMPLES / "train.py"), "--out", str(model_dir)],
        check=True,
        capture_output=True,
    )
    results: list[dict[str, Any]] = []
    for option in [int(o) for o in args.options.split(",")]:
        for label, tree in trees:
            r = run_option(Path(tree).resolve(), option, n, model_dir)
            r["tree"] = label
            results.append(r)
            print(
                f"{label:8} option {option}: {r['requests_per_ws']:6.1f} requests/ws "
                f"({r['requests']} + {r['watch_list']} watch/list), "
                f"{r['cpu_ms_per_ws']:5d} ms CPU/ws, Ready in {r['ready_s']} s",
                flush=True,
            )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"api-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
