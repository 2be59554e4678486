"""Scoring runtime benchmark: kaci-runtime against its peers, side by side in one run.

Servers (one worker each, all pinned to CPU 1 with taskset; wrk on CPU 0):
  kaci        kaci-runtime serving bench/runtime/score.py (the Azure tutorial's script)
  kaci-stdjson  the same with KACI_FAST_JSON=0 (the standard json.loads)
  kaci-aks    the same with AKS's front-end limits at Azure's defaults (opt-in: BENCH_SERVERS)
  kaci-capture  the same capturing every request and answer to a folder (collect_model_data;
                opt-in: BENCH_SERVERS)
  kaci-capture-stdout  the same with the default sink, stdout, read through a pipe as a
                container runtime reads a Pod's (opt-in: BENCH_SERVERS)
  kaci-baseline kaci-runtime from another source tree (BENCH_KACI_BASELINE=<folder holding
                kaci_runtime/>, e.g. an older commit's scoring-runtime/ from `git archive`),
                to compare a change with what it changed, in the same run
  azureml     azureml-inference-server-http 1.5.1 (azmlinfsrv, gunicorn) on the same script
  mlserver    MLServer 1.7.1 + mlserver-sklearn, V2 protocol
  kserve      KServe 0.21's Python model server (v1 protocol, gRPC off)
  floor       no HTTP: json.loads + predict + json.dumps in a loop (stdlib json)
Same model (LogisticRegression 784x10, joblib) and rows for all; batch 1 and 64,
concurrency 1 and 16; each measurement repeated, medians reported.

    bench/runtime/run.sh            # or: .venv/bin/python bench/runtime/bench.py
    BENCH_SECONDS=5 BENCH_REPEATS=3 BENCH_SERVERS=kaci,azureml,mlserver,kserve,floor
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENVS = ROOT / "bench" / ".venvs"
RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "work"
MAIN_PY = ROOT / ".venv" / "bin" / "python"
SERVER_CPU, LOAD_CPU = "1", "0"
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
BATCHES = (1, 64)
CONCURRENCY = (1, 16)
RESULT_LINE = re.compile(r"KACI_RESULT (.*)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the shared inputs ------------------------------------------------------------------------


def prepare() -> dict[str, Any]:
    """Model, payloads per protocol and batch, expected predictions."""
    WORK.mkdir(parents=True, exist_ok=True)
    model_dir = WORK / "model"
    model = model_dir / "sklearn_mnist_model.pkl"
    if not model.exists():
        subprocess.run(
            [str(MAIN_PY), str(ROOT / "examples/mnist/train.py"), "--out", str(model_dir)],
            check=True,
        )
    # Pixel values with six decimals: a 64-row body is about 0.5 MB, like real MNIST floats.
    rng = random.Random(7)
    rows = [[round(rng.random(), 6) for _ in range(784)] for _ in range(64)]
    payloads: dict[str, dict[int, Path]] = {"azure": {}, "kserve": {}, "mlserver": {}}
    for batch in BATCHES:
        data = rows[:batch]
        bodies = {
            "azure": {"data": data},
            "kserve": {"instances": data},
            "mlserver": {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [batch, 784],
                        "datatype": "FP64",
                        "data": [v for row in data for v in row],
                    }
                ]
            },
        }
        for proto, body in bodies.items():
            path = WORK / f"{proto}-b{batch}.json"
            path.write_text(json.dumps(body))
            payloads[proto][batch] = path
    expected = json.loads(
        subprocess.run(
            [
                str(MAIN_PY),
                "-c",
                "import joblib, json, sys, numpy as np; m = joblib.load(sys.argv[1]); "
                "print(json.dumps(m.predict(np.array(json.load(open(sys.argv[2]))['data'])).tolist()))",
                str(model),
                str(payloads["azure"][64]),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    # Azure's layout for the azure-style servers.
    app = WORK / "app"
    version_dir = app / "azureml-models" / "sklearn_mnist" / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, version_dir / model.name)
    shutil.copy(HERE / "score.py", app / "score.py")
    # MLServer's model folder.
    ml = WORK / "mlserver"
    ml.mkdir(exist_ok=True)
    shutil.copy(model, ml / "model.joblib")
    return {
        "model": model,
        "payloads": payloads,
        "expected": expected,
        "app": app,
        "model_dir": version_dir,
        "mlserver": ml,
    }


# -- the servers ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    protocol: str
    path: str
    command: Callable[[int], list[str]]
    predictions: Callable[[Any], list[int]]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[int], None] | None = None
    # Its stdout into a pipe that the bench drains (as containerd's shim drains a Pod's)
    # instead of a log file; stderr still goes to the log.
    stdout_pipe: bool = False


def servers(inputs: dict[str, Any]) -> list[Server]:
    app, model_dir = inputs["app"], inputs["model_dir"]
    azure_env = {"AZUREML_MODEL_DIR": str(model_dir)}

    def mlserver_setup(port: int) -> None:
        ml = inputs["mlserver"]
        settings = {
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_endpoint": None,
            "parallel_workers": 1,
        }
        (ml / "settings.json").write_text(json.dumps(settings))
        model_settings = {
            "name": "mnist",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib"},
        }
        (ml / "model-settings.json").write_text(json.dumps(model_settings))

    baseline = os.environ.get("BENCH_KACI_BASELINE")
    extra: list[Server] = []
    if baseline:
        extra.append(
            Server(
                "kaci-baseline",
                "azure",
                "/score",
                lambda port: [
                    str(MAIN_PY),
                    "-m",
                    "kaci_runtime",
                    "--entry_script",
                    str(app / "score.py"),
                    "--model_dir",
                    str(model_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                lambda out: list(out),
                app,
                {**azure_env, "PYTHONPATH": str(Path(baseline).resolve())},
            )
        )

    def kaci(name: str, env: dict[str, str], stdout_pipe: bool = False) -> Server:
        return Server(
            name,
            "azure",
            "/score",
            lambda port: [
                str(ROOT / ".venv/bin/kaci-runtime"),
                "--entry_script",
                str(app / "score.py"),
                "--model_dir",
                str(model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            lambda out: list(out),
            app,
            {**azure_env, **env},
            stdout_pipe=stdout_pipe,
        )

    captured = Path(tempfile.mkdtemp(prefix="kaci-bench-model-data-"))
    return [
        *extra,
        kaci("kaci", {}),
        # The standard json.loads: what the HTTP server alone adds.
        kaci("kaci-stdjson", {"KACI_FAST_JSON": "0"}),
        # AKS's front-end limits at Azure's defaults (1 run() at once, 500 ms queue wait):
        # run() on a runner thread, the loop answering (kaci_runtime.limits).
        kaci("kaci-aks", {"KACI_MAX_CONCURRENT_REQUESTS": "1", "KACI_MAX_REQUEST_WAIT_MS": "500"}),
        # Every request and answer captured (collect_model_data) into a folder, as on a PVC.
        kaci(
            "kaci-capture",
            {"KACI_MODEL_DATA_CAPTURE": "true", "KACI_MODEL_DATA_DIR": str(captured)},
        ),
        # The default sink: JSON lines on stdout, which a Pod's container runtime reads.
        kaci("kaci-capture-stdout", {"KACI_MODEL_DATA_CAPTURE": "true"}, stdout_pipe=True),
        Server(
            "azureml",
            "azure",
            "/score",
            lambda port: [
                str(VENVS / "azureml/bin/azmlinfsrv"),
                "--entry_script",
                str(app / "score.py"),
                "--model_dir",
                str(model_dir),
                "--port",
                str(port),
            ],
            lambda out: list(out),
            app,
            azure_env,
        ),
        Server(
            "mlserver",
            "mlserver",
            "/v2/models/mnist/infer",
            lambda port: [str(VENVS / "mlserver/bin/mlserver"), "start", str(inputs["mlserver"])],
            lambda out: [int(v) for v in out["outputs"][0]["data"]],
            inputs["mlserver"],
            {},
            mlserver_setup,
        ),
        Server(
            "kserve",
            "kserve",
            "/v1/models/mnist:predict",
            lambda port: [
                str(VENVS / "kserve/bin/python"),
                str(HERE / "kserve_model.py"),
                "--model_name",
                "mnist",
                "--model_path",
                str(inputs["model"]),
                "--http_port",
                str(port),
                "--enable_grpc",
                "false",
                "--workers",
                "1",
            ],
            lambda out: list(out["predictions"]),
            WORK,
        ),
    ]


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def session_processes(sid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: the session id
            pids.append(int(stat.parent.name))
    return pids


def memory_mib(sid: int) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) over every process of the server, in MiB."""
    rss = pss = 0
    for pid in session_processes(sid):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def cpu_seconds(sid: int) -> float:
    """User + system CPU time used so far by every process of the server."""
    ticks = 0
    for pid in session_processes(sid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(port: int, path: str, body: Path, connections: int, seconds: float) -> dict[str, float]:
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s"]
    cmd += ["-s", str(HERE / "post.lua"), f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(
        cmd, env={**os.environ, "BODY_FILE": str(body)}, capture_output=True, text=True, check=True
    ).stdout
    match = RESULT_LINE.search(out)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    return {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}


@dataclass
class Running:
    server: Server
    port: int
    proc: subprocess.Popen[bytes]
    log: Any
    result: dict[str, Any]


def drain(pipe: Any) -> None:
    """Read a server's stdout to its end and drop it (a container runtime's log copy)."""
    while pipe.read1(1 << 20):
        pass


def start(server: Server, inputs: dict[str, Any], log_dir: Path) -> Running:
    """Start one server and time it to its first correct answer (nothing else running)."""
    port = free_port()
    if server.setup:
        server.setup(port)
    payloads = inputs["payloads"][server.protocol]
    first_body = payloads[1].read_bytes()
    log = (log_dir / f"{server.name}.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *server.command(port)],
        cwd=server.cwd,
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE if server.stdout_pipe else log,
        stderr=log if server.stdout_pipe else subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one, by its id
    )
    if proc.stdout is not None:
        threading.Thread(target=drain, args=(proc.stdout,), daemon=True).start()
    running = Running(server, port, proc, log, {"server": server.name, "runs": {}})
    while time.monotonic() - started < 180:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode}; see {log.name}")
        try:
            status, body = post(port, server.path, first_body)
            if status == 200 and server.predictions(json.loads(body)) == inputs["expected"][:1]:
                running.result["startup_s"] = time.monotonic() - started
                break
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            pass
        time.sleep(0.02)
    else:
        raise RuntimeError(f"{server.name} gave no correct answer in 180 s")
    status, body = post(port, server.path, payloads[64].read_bytes())
    if status != 200 or server.predictions(json.loads(body)) != inputs["expected"]:
        raise RuntimeError(f"{server.name}: wrong answer for batch 64: {status} {body[:200]!r}")
    # Memory after start-up and one answer; measured again after the load.
    running.result["rss_start_mib"], running.result["pss_start_mib"] = memory_mib(proc.pid)
    return running


def stop(running: Running) -> None:
    proc = running.proc
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
    # Leftover children in its session (gunicorn/MLServer workers).
    for pid in session_processes(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    running.log.close()


def floor_run(inputs: dict[str, Any], batch: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            SERVER_CPU,
            str(MAIN_PY),
            str(HERE / "floor.py"),
            str(inputs["model"]),
            str(inputs["payloads"]["azure"][batch]),
            str(SECONDS),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    run: dict[str, float] = json.loads(out)
    run.update(non2xx=0, errors=0)
    return run


def measure(
    running: list[Running], inputs: dict[str, Any], with_floor: bool
) -> list[dict[str, Any]]:
    """Every cell for every server, round-robin, so background load hits all alike."""
    floor: dict[str, Any] = {"server": "floor", "runs": {}}
    for batch in BATCHES:
        for r in running:
            wrk(r.port, r.server.path, inputs["payloads"][r.server.protocol][batch], 16, 2)
    for repeat in range(REPEATS):
        for batch in BATCHES:
            if with_floor:
                # One core, no HTTP: concurrency does not change the floor.
                run = floor_run(inputs, batch)
                for conns in CONCURRENCY:
                    floor["runs"].setdefault(f"b{batch}c{conns}", []).append(run)
            for conns in CONCURRENCY:
                cell = f"b{batch}c{conns}"
                for r in running:
                    body = inputs["payloads"][r.server.protocol][batch]
                    cpu_before = cpu_seconds(r.proc.pid)
                    result = wrk(r.port, r.server.path, body, conns, SECONDS)
                    # CPU time per request: what a core does when nothing else runs on it.
                    used = cpu_seconds(r.proc.pid) - cpu_before
                    result["cpu_ms"] = used * 1000 / max(result["requests"], 1)
                    r.result["runs"].setdefault(cell, []).append(result)
        print(f"  round {repeat + 1}/{REPEATS} done", flush=True)
    for r in running:
        r.result["rss_mib"], r.result["pss_mib"] = memory_mib(r.proc.pid)
    return [r.result for r in running] + ([floor] if with_floor else [])


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def table(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Run {meta['started']} on {meta['cpu']} ({meta['cores']} cores); servers pinned to "
        f"CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}; {REPEATS} x {SECONDS:.0f} s per cell, "
        f"medians; load average before {meta['load_before']}, after {meta['load_after']}.",
        "",
        "| server | batch | concurrency | req/s | p50 ms | p99 ms | errors | CPU ms/req | "
        "req/s per CPU-second |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for batch in BATCHES:
        for conns in CONCURRENCY:
            for res in results:
                runs = res["runs"].get(f"b{batch}c{conns}")
                if not runs:
                    continue
                errors = sum(int(r["non2xx"] + r["errors"]) for r in runs)
                cpu = median(runs, "cpu_ms")
                lines.append(
                    f"| {res['server']} | {batch} | {conns} | {median(runs, 'rps'):,.0f} | "
                    f"{median(runs, 'p50_ms'):.2f} | {median(runs, 'p99_ms'):.2f} | {errors} | "
                    f"{cpu:.3f} | {1000 / cpu:,.0f} |"
                )
    lines += [
        "",
        "| server | startup to first correct answer (s) | RSS MiB after start | "
        "RSS MiB after load | PSS MiB after load |",
        "|---|---:|---:|---:|---:|",
    ]
    for res in results:
        if "startup_s" in res:
            lines.append(
                f"| {res['server']} | {res['startup_s']:.2f} | {res['rss_start_mib']:.0f} | "
                f"{res['rss_mib']:.0f} | {res['pss_mib']:.0f} |"
            )
    by = {r["server"]: r for r in results}
    if "kaci" in by:
        lines.append("")
        for cell in ("b1c16", "b64c16", "b1c1", "b64c1"):
            kaci = median(by["kaci"]["runs"][cell], "rps")
            parts = []
            for other in (
                "floor",
                "kaci-baseline",
                "kaci-stdjson",
                "azureml",
                "kserve",
                "mlserver",
            ):
                if other in by and cell in by[other]["runs"]:
                    parts.append(f"{kaci / median(by[other]['runs'][cell], 'rps'):.2f}x {other}")
            lines.append(f"- kaci at {cell}: " + ", ".join(parts))
            cpu_parts = []
            kaci_cpu = median(by["kaci"]["runs"][cell], "cpu_ms")
            for other in (
                "floor",
                "kaci-baseline",
                "kaci-stdjson",
                "azureml",
                "kserve",
                "mlserver",
            ):
                if other in by and cell in by[other]["runs"]:
                    ratio = median(by[other]["runs"][cell], "cpu_ms") / kaci_cpu
                    cpu_parts.append(f"{ratio:.2f}x {other}")
            lines.append(f"  - per CPU-second at {cell}: " + ", ".join(cpu_parts))
        if "floor" in by:
            gap = median(by["kaci"]["runs"]["b1c1"], "p50_ms") - median(
                by["floor"]["runs"]["b1c1"], "p50_ms"
            )
            lines.append(f"- kaci p50 at batch 1, concurrency 1: {gap:+.3f} ms from the floor")
    return "\n".join(lines)


def main() -> int:
    wanted = os.environ.get(
        "BENCH_SERVERS", "kaci,kaci-stdjson,azureml,mlserver,kserve,floor"
    ).split(",")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown CPU",
        ),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "seconds": SECONDS,
        "repeats": REPEATS,
    }
    inputs = prepare()
    log_dir = RESULTS / f"runtime-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    running: list[Running] = []
    try:
        for server in servers(inputs):
            if server.name in wanted:
                running.append(start(server, inputs, log_dir))
                print(f"== {server.name} up in {running[-1].result['startup_s']:.2f} s", flush=True)
        results = measure(running, inputs, "floor" in wanted)
    finally:
        for r in running:
            stop(r)
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = table(results, meta)
    (RESULTS / f"runtime-{stamp}.json").write_text(json.dumps({"meta": meta, "results": results}))
    (RESULTS / f"runtime-{stamp}.md").write_text(text + "\n")
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
