"""SDK v1 deployment scripts (tests/cluster/sdk_corpus/) run against the real cluster.

Each script is Azure code with only its imports changed; it runs as a subprocess
in a folder of its own holding `.azureml/config.json`, the trained MNIST model,
the sample request and the tutorial's score.py, and writes what it saw to
results.json. The predictions are checked against the model file's own.

One namespace and one operator instance serve the whole module (the scripts clean
up their services as Azure's do), and they share one trained model: the operator
builds an image once per content hash, so scripts with the same score.py,
Environment and model reuse one image.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from onnx_models import logistic_regression_onnx  # type: ignore[import-not-found,unused-ignore]
from support.kaci_operator import run_operator, train  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CONTEXT = "kaci-local"
CORPUS = Path(__file__).resolve().parent / "sdk_corpus"
MNIST = ROOT / "examples" / "mnist"
SCRIPT_TIMEOUT_S = 900
# Scripts running at once: the builds and Pods of one overlap the other's waits; the
# node (2 cores, shared) holds two 0.5-core services beside the operator's builds.
RUN_AT_ONCE = 2


class Corpus:
    """Runs the selected scripts, RUN_AT_ONCE at a time, each in a folder of its own."""

    def __init__(self, template: Path, work: Path, scripts: list[str], namespace: str) -> None:
        self.namespace = namespace
        self.template = template
        self.work = work
        model = joblib.load(template / "sklearn_mnist_model.pkl")
        samples = json.loads((template / "sample-request.json").read_text())["data"]
        self.samples: list[list[float]] = samples
        self.expected: list[int] = model.predict(np.array(samples)).tolist()
        self.pool = ThreadPoolExecutor(max_workers=RUN_AT_ONCE)
        # All selected scripts start now, in order; each test waits for its own.
        self.futures = {s: self.pool.submit(self._run, s) for s in scripts}

    def _run(self, script: str) -> tuple[int, str, float]:
        folder = self.work / Path(script).stem
        shutil.copytree(self.template, folder)
        # The cluster is shared: other worktrees' tests apply their own (older) copies of
        # the CRDs, whose schema prunes fields this branch added. Apply ours again.
        apply_crds()
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(CORPUS / script)],
            cwd=folder,
            env={**os.environ, **script_env(CORPUS / script)},
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
            check=False,
        )
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started

    def run(self, script: str) -> dict[str, Any]:
        code, output, took = self.futures[script].result()
        print(f"{script}: {took:.0f} s")
        assert code == 0, f"{script} failed{crd_hint()}:\n" + output[-5000:]
        folder = self.work / Path(script).stem
        results: dict[str, Any] = json.loads((folder / "results.json").read_text())
        return results


def script_env(script: Path) -> dict[str, str]:
    """`# kaci-env: NAME=value` lines at a script's top: the user's environment for it
    (e.g. a LocalWebservice mode), which Azure code itself never sets."""
    env = {}
    for line in script.read_text().splitlines()[:10]:
        if line.startswith("# kaci-env:"):
            name, _, value = line.removeprefix("# kaci-env:").strip().partition("=")
            env[name] = value
    return env


KUBECTL = ["kubectl", f"--kubeconfig={KUBECONFIG}", f"--context={CONTEXT}"]


def apply_crds() -> None:
    """This tree's CRDs (idempotent server-side apply), established."""
    subprocess.run(
        [*KUBECTL, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [*KUBECTL, "wait", "--for=condition=Established", "crd/webservices.kaci.dev"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def crd_hint() -> str:
    """Says so when the live CRDs are not this tree's (someone applied older ones)."""
    live = subprocess.run(
        [*KUBECTL, "get", "crd", "images.kaci.dev", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    if live and "sourceDirectory" not in live:
        return " (the live CRDs lack this branch's fields: another tree applied older ones)"
    return ""


class CrdKeeper:
    """Until this branch's CRDs are on main, other worktrees' tests on the shared cluster
    apply older copies, whose schemas refuse the fields this branch added (a pass of the
    operator then fails, and a deletion waits on its finalizer). While the corpus runs,
    this thread puts ours back whenever the live Image CRD lacks them."""

    def __init__(self, every_s: float = 3.0) -> None:
        self.every_s = every_s
        self.stop = threading.Event()
        self.reapplied = 0
        self.thread = threading.Thread(target=self._loop, name="crd-keeper", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                if crd_hint():
                    apply_crds()
                    self.reapplied += 1
            except (subprocess.SubprocessError, OSError):
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def crds(local_cluster: Path) -> Iterator[None]:
    apply_crds()
    keeper = CrdKeeper()
    yield
    keeper.close()
    if keeper.reapplied:
        print(f"CRDs re-applied {keeper.reapplied} times (another tree applied older ones)")


def selected_scripts(items: list[pytest.Item]) -> list[str]:
    """The corpus scripts of the tests selected in this session (test_<script stem>)."""
    here = Path(__file__).resolve()
    names = {p.name for p in CORPUS.glob("[0-9]*.py")}
    out = []
    for item in items:
        script = item.name.removeprefix("test_") + ".py"
        if Path(str(item.fspath)).resolve() == here and script in names:
            out.append(script)
    return out


@pytest.fixture(scope="module")
def corpus(
    request: pytest.FixtureRequest,
    crds: None,
    make_namespace: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Corpus]:
    namespace = make_namespace(f"t-sdk-corpus-{secrets.token_hex(3)}")
    template = tmp_path_factory.mktemp("corpus-template")
    train(template)
    # The same classifier as an ONNX graph, for the no-code ONNX deploy.
    logistic_regression_onnx(
        joblib.load(template / "sklearn_mnist_model.pkl"), template / "mnist-model.onnx"
    )
    shutil.copy(MNIST / "score.py", template / "score.py")
    with run_operator(f"sdkc-{secrets.token_hex(4)}") as op:
        (template / ".azureml").mkdir()
        (template / ".azureml" / "config.json").write_text(
            json.dumps(
                {
                    "context": CONTEXT,
                    "namespace": namespace,
                    "kubeconfig": str(KUBECONFIG),
                    "operator": op.instance,
                }
            )
        )
        scripts = selected_scripts(request.session.items)
        corpus = Corpus(template, tmp_path_factory.mktemp("corpus-runs"), scripts, namespace)
        try:
            yield corpus
        finally:
            corpus.pool.shutdown(wait=True)
            for kind in ("webservices", "images", "models"):
                subprocess.run(
                    [
                        "kubectl",
                        f"--kubeconfig={KUBECONFIG}",
                        f"--context={CONTEXT}",
                        "-n",
                        namespace,
                        "delete",
                        f"{kind}.kaci.dev",
                        "--all",
                        "--timeout=120s",
                    ],
                    capture_output=True,
                    timeout=180,
                    check=False,
                )
            print("operator log (tail):\n" + op.log_tail())


def test_01_aci_environment(corpus: Corpus) -> None:
    r = corpus.run("01_aci_environment.py")
    assert r["prediction"] == corpus.expected
    assert r["state"] == "Healthy"
    assert r["version"] == "1.57.0"
    assert (r["rg"], r["location"], r["sub"]) == (corpus.namespace, "kubernetes", CONTEXT)


def test_02_two_models(corpus: Corpus) -> None:
    r = corpus.run("02_two_models.py")
    assert r["a"] == corpus.expected
    assert r["b"] == corpus.expected
    assert r["models"] == ["mnist_second:1", "sklearn_mnist:1"]


def test_03_condadeps_containerimage(corpus: Corpus) -> None:
    r = corpus.run("03_condadeps_containerimage.py")
    assert r["prediction"] == corpus.expected
    assert r["image"].startswith("myimage1:")


def test_04_curated_environment(corpus: Corpus) -> None:
    r = corpus.run("04_curated_environment.py")
    assert r["prediction"] == corpus.expected
    assert "GPU-only" in r["gpu_refused"]
    assert "my-sklearn-env" in r["listed"]
    assert r["version"] == "1"


def test_05_aks_autoscale(corpus: Corpus) -> None:
    r = corpus.run("05_aks_autoscale.py")
    assert r["prediction"] == corpus.expected
    assert (r["branch"], r["state"]) == ("existing", "Succeeded")
    assert (r["kind"], r["compute_type"]) == ("AksWebservice", "AKS")
    assert r["autoscale"] == [True, 1, 3, 60]
    # Azure's AKS default: key auth on; run() got through with the primary key.
    assert r["auth"] is True
    assert r["has_keys"] is True
    assert r["compute_targets"] == [CONTEXT]


def test_06_local_webservice(corpus: Corpus) -> None:
    r = corpus.run("06_local_webservice.py")
    assert r["prediction"] == corpus.expected
    assert r["reloaded"] == corpus.expected
    assert r["updated"] == corpus.expected
    assert r["cloud"] == corpus.expected
    assert r["logs_nonempty"] is True


def test_07_no_code_deploy(corpus: Corpus) -> None:
    r = corpus.run("07_no_code_deploy.py")
    assert r["prediction"] == corpus.expected
    assert r["framework"] == "ScikitLearn"


def test_08_source_directory(corpus: Corpus) -> None:
    r = corpus.run("08_source_directory.py")
    assert r["prediction"] == corpus.expected


def test_09_token_auth(corpus: Corpus) -> None:
    r = corpus.run("09_token_auth.py")
    assert r["prediction"] == corpus.expected
    assert r["token_refused"] is None
    assert r["token_parts"] == 3  # a compact JWT
    assert r["refresh_by"]
    assert not any("token_auth_enabled" in w for w in r["warned"])
    assert r["auth"] is False  # key and token auth are exclusive
    assert (r["replicas"], r["autoscale"]) == (1, False)


def test_10_update_inference_config(corpus: Corpus) -> None:
    r = corpus.run("10_update_inference_config.py")
    assert r["prediction"] == corpus.expected
    assert r["after"] == corpus.expected
    assert r["v"] == 2


def test_11_workspace_lists(corpus: Corpus) -> None:
    r = corpus.run("11_workspace_lists.py")
    assert r["prediction"] == corpus.expected
    assert r["model_tags"] == {"area": "mnist"}
    assert r["in_webservices"] is True
    assert "listed-mnist" in r["aci_names"]
    assert "listed-mnist" not in r["aks_names"]
    assert r["listed_models"] == ["mnist_listed"]
    assert "listed-mnist" in r["images"]
    assert r["compute_targets"] == 1
    assert r["after_delete"] is False


def test_12_overwrite(corpus: Corpus) -> None:
    r = corpus.run("12_overwrite.py")
    assert r["prediction"] == corpus.expected
    assert "already exists" in r["refused"]
    assert r["memory"] == 1.5
    assert r["same_object"] is True


def test_13_empty_models(corpus: Corpus) -> None:
    r = corpus.run("13_empty_models.py")
    assert r["sums"] == [round(sum(row), 6) for row in corpus.samples]
    assert r["greeting"] == "hello $USER from kaci"
    assert r["example"] == "EXAMPLE_VALUE"
    assert r["models"] == []


def test_14_local_webservice_docker(corpus: Corpus) -> None:
    r = corpus.run("14_local_webservice_docker.py")
    assert r["mode"] == "docker"
    assert r["prediction"] == corpus.expected
    assert r["reloaded"] == corpus.expected  # the edited score.py, same image
    assert r["port"] == 6789
    assert r["logs_nonempty"] is True


def test_15_no_code_onnx(corpus: Corpus) -> None:
    r = corpus.run("15_no_code_onnx.py")
    # Every output of the graph, by name; the label is the pickle's prediction.
    assert r["prediction"] == corpus.expected
    assert r["outputs"] == ["label", "scores"]
    assert r["same_by_name"] is True
    assert (r["framework"], r["compute_type"]) == ("Onnx", "ACI")
