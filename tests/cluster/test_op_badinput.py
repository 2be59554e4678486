"""The bad-input catalogue: what the API server rejects (schema and CEL rules, checked by
message) and what reaches a Failed / not-Ready state with a reason a user can act on,
while a good Webservice keeps reconciling and the operator stays up."""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kaci.render import modelfiles
from support.kaci_operator import (  # type: ignore[import-not-found,unused-ignore]
    ROOT,
    Operator,
    as_stdin,
    builder_env,
    run_operator,
    train,
    wait_until,
)

API = "kaci.dev/v1alpha1"
GOOD_SCORE = (ROOT / "examples/mnist/score.py").read_text()
SCORING_CM = {"configMap": {"name": "mnist-scoring", "key": "myenv.yml"}}


def ws(name: str, **spec: Any) -> dict[str, Any]:
    body = {"deploymentConfig": {"cpuCores": 0.1, "memoryGb": 1}, **spec}
    return {"apiVersion": API, "kind": "Webservice", "metadata": {"name": name}, "spec": body}


def image(name: str, script: str = GOOD_SCORE, **spec: Any) -> dict[str, Any]:
    body = {
        "models": [{"name": "sklearn_mnist"}],
        "executionScript": {"inline": script},
        "condaFile": SCORING_CM,
        **spec,
    }
    return {"apiVersion": API, "kind": "Image", "metadata": {"name": name}, "spec": body}


def model(name: str, source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {"source": source, **spec},
    }


def base_registry() -> str:
    """The registry the test operators' builder pulls base images from."""
    default = builder_env().get("KACI_DEFAULT_BASE_IMAGE", "127.0.0.1:5000/kaci/python:3.11")
    return default.rsplit("/kaci/", 1)[0]


def with_dc(**dc: Any) -> dict[str, Any]:
    w = ws("bad-dc", image={"name": "good"})
    w["spec"]["deploymentConfig"].update(dc)
    return w


CFG = {"executionScript": {"inline": GOOD_SCORE}}

# (id, manifest, what the API server says)
REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("negative-cpu", with_dc(cpuCores=-1), "cpuCores must be greater than 0"),
    ("zero-cpu", with_dc(cpuCores=0), "cpuCores must be greater than 0"),
    ("memory-lots", with_dc(memoryGb="lots"), "memoryGb in body must be of type number"),
    ("negative-memory", with_dc(memoryGb=-0.5), "memoryGb must be greater than 0"),
    (
        "two-sources",
        ws("two", image={"name": "good"}, models=[{"name": "m"}], imageConfig=CFG),
        "set exactly one of modelFiles, models, image",
    ),
    ("no-source", ws("none"), "set exactly one of modelFiles, models, image"),
    (
        "models-without-imageconfig",
        ws("noic", models=[{"name": "m"}]),
        "imageConfig (at least executionScript) is required",
    ),
    (
        "image-with-imageconfig",
        ws("both", image={"name": "good"}, imageConfig=CFG),
        "imageConfig is not used with image",
    ),
    (
        "runtime-spark",
        ws("spark", models=[{"name": "m"}], imageConfig={**CFG, "runtime": "spark-py"}),
        'runtime "spark-py" is not supported',
    ),
    (
        "script-inline-and-configmap",
        image(
            "two-scripts", executionScript={"inline": "x", "configMap": {"name": "c", "key": "k"}}
        ),
        "executionScript: set exactly one of inline, configMap",
    ),
    ("service-name-too-long", ws("a" * 33, image={"name": "good"}), "3-32 characters"),
    ("service-name-starts-with-digit", ws("1svc", image={"name": "good"}), "start with a letter"),
    (
        "model-two-sources",
        model("m2", {"configMap": {"name": "a"}, "url": {"url": "https://x/m"}}),
        "source: set exactly one of configMap, url, pvc, image",
    ),
    ("model-ftp-url", model("ftp", {"url": {"url": "ftp://example.com/m.pkl"}}), "^https?://"),
    ("model-bad-sha", model("sha", {"url": {"url": "https://x/m", "sha256": "xyz"}}), "sha256"),
    (
        "model-name-with-space",
        model("space", {"configMap": {"name": "a"}}, modelName="my model"),
        "spec.modelName",
    ),
    (
        "image-without-script",
        {
            "apiVersion": API,
            "kind": "Image",
            "metadata": {"name": "noscript"},
            "spec": {"models": [{"name": "m"}]},
        },
        "executionScript",
    ),
    ("image-name-uppercase", image("upper", imageName="My_Image"), "spec.imageName"),
    (
        "no-deployment-config",
        {
            "apiVersion": API,
            "kind": "Webservice",
            "metadata": {"name": "nodc"},
            "spec": {"image": {"name": "good"}},
        },
        "deploymentConfig",
    ),
    (
        "model-version-zero",
        ws("v0", models=[{"name": "m", "version": 0}], imageConfig=CFG),
        "version",
    ),
]


class Bench:
    def __init__(self, kubectl: Any, ns: str, op: Operator, port: int, model_file: Path) -> None:
        self.kubectl, self.ns, self.op, self.port = kubectl, ns, op, port
        self.model_file = model_file

    def apply(self, docs: list[dict[str, Any]]) -> None:
        self.kubectl(
            "apply",
            "-n",
            self.ns,
            "-f",
            "-",
            input=as_stdin([self.op.label(copy.deepcopy(d)) for d in docs]),
        )

    def status(self, kind: str, name: str) -> dict[str, Any]:
        obj = json.loads(self.kubectl("get", kind, name, "-n", self.ns, "-o", "json"))
        return obj.get("status") or {}


@pytest.fixture(scope="module")
def bench(
    make_namespace: Any, local_cluster: Path, kubectl: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bench]:
    ns = f"t-op-bad-{secrets.token_hex(3)}"
    make_namespace(ns)  # ready for Pods (its default ServiceAccount exists)
    files = tmp_path_factory.mktemp("files")
    model_file, _ = train(files)
    # A file server on loopback for the URL source (the operator runs on this host).
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(files),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        port = int(line.split(" port ")[1].split()[0])
        env = {"KACI_URL_ALLOWED_NETWORKS": "127.0.0.1/32"}
        with run_operator(f"bad-{secrets.token_hex(3)}", env) as op:
            b = Bench(kubectl, ns, op, port, model_file)
            kubectl("create", "configmap", "mnist-model", f"--from-file={model_file}", "-n", ns)
            kubectl(
                "create",
                "configmap",
                "mnist-scoring",
                f"--from-file={ROOT / 'examples/mnist/myenv.yml'}",
                "-n",
                ns,
            )
            yield b
            assert op.alive(), op.log_tail()
    finally:
        server.terminate()
        server.wait(timeout=30)
        kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


@pytest.mark.parametrize(
    ("manifest", "message"), [(m, msg) for _, m, msg in REJECTED], ids=[i for i, _, _ in REJECTED]
)
def test_api_server_rejects(bench: Bench, manifest: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception) as err:  # noqa: PT011 (KubectlError, checked by message)
        bench.apply([manifest])
    assert message in str(err.value), str(err.value)


def _ready_message(st: dict[str, Any]) -> str:
    return next(
        (
            str(c.get("message"))
            for c in st.get("conditions") or []
            if c.get("type") == "Ready" and c.get("status") == "False"
        ),
        "",
    )


def model_says(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda st: text in _ready_message(st)


def image_says(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda st: st.get("state") == "Failed" and text in _ready_message(st)


def service_says(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda st: (
        st.get("state") == "Failed" and text in ((st.get("error") or {}).get("message") or "")
    )


def test_failures_are_explained_while_others_reconcile(bench: Bench) -> None:
    url = f"http://127.0.0.1:{bench.port}/sklearn_mnist_model.pkl"
    sha = hashlib.sha256(bench.model_file.read_bytes()).hexdigest()
    cases: list[tuple[str, str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        (
            "model",
            "wrong-sha",
            model("wrong-sha", {"url": {"url": url, "sha256": "0" * 64}}),
            model_says("not the expected"),
        ),
        (
            "model",
            "metadata",
            model("metadata", {"url": {"url": "http://169.254.169.254/latest"}}),
            model_says("link-local"),
        ),
        (
            "model",
            "service-ip",
            model("service-ip", {"url": {"url": "http://10.96.0.1/m"}}),
            model_says("cluster-internal network"),
        ),
        (
            "model",
            "apiserver",
            model("apiserver", {"url": {"url": "https://127.0.0.1:6443/api"}}),
            model_says("API server"),
        ),
        (
            "model",
            "traversal",
            model("traversal", {"url": {"url": url, "fileName": "../../etc/x"}}),
            model_says("escapes the model folder"),
        ),
        (
            "model",
            "missing-key",
            model("missing-key", {"configMap": {"name": "mnist-model", "keys": ["nope.pkl"]}}),
            model_says("has no key 'nope.pkl'"),
        ),
        (
            "model",
            "missing-cm",
            model("missing-cm", {"configMap": {"name": "no-such-cm"}}),
            model_says("ConfigMap no-such-cm not found"),
        ),
        (
            "model",
            "missing-image",
            model(
                "missing-image",
                {"image": {"reference": "127.0.0.1:5000/kaci/no-such-model-image:1"}},
            ),
            model_says("reading model files from image"),
        ),
        (
            "image",
            "no-run",
            image("no-run", "def init():\n    pass\n"),
            image_says("defines no run(raw_data)"),
        ),
        ("image", "syntax", image("syntax", "def init(:\n"), image_says("syntax error at line 1")),
        (
            "image",
            "no-model",
            image("no-model", models=[{"name": "no-such-model"}]),
            image_says("model no-such-model not found"),
        ),
        (
            "image",
            "no-version",
            image("no-version", models=[{"name": "sklearn_mnist", "version": 7}]),
            image_says("has no version 7 (latest is 1)"),
        ),
        (
            "image",
            "script-key",
            image(
                "script-key",
                executionScript={"configMap": {"name": "mnist-scoring", "key": "missing.py"}},
            ),
            image_says("has no key 'missing.py'"),
        ),
        (
            "image",
            "bad-conda",
            image("bad-conda", condaFile={"inline": "dependencies: [1, 2"}),
            image_says("not valid YAML"),
        ),
        (
            "image",
            "bad-pip",
            image("bad-pip", pipRequirements=["no-such-package-kaci-bad"]),
            image_says("pip could not find package no-such-package-kaci-bad"),
        ),
        (
            "image",
            "bad-base",
            # Not there, on the registry the builder reaches (a registry out of reach
            # is a retry, not a failure).
            image("bad-base", baseImage=f"{base_registry()}/kaci/no-such-base:1"),
            image_says("build failed at Step 1/"),
        ),
        (
            "webservice",
            "ws-no-image",
            ws("ws-no-image", image={"name": "no-such-image"}),
            service_says("image no-such-image not found"),
        ),
        (
            "webservice",
            "ws-no-model",
            ws("ws-no-model", models=[{"name": "missing-model"}], imageConfig=CFG),
            service_says("model missing-model not found"),
        ),
        (
            "webservice",
            "ws-refused-url",
            ws(
                "ws-refused-url",
                modelFiles={"url": {"url": "http://169.254.169.254/m.pkl"}},
                imageConfig=CFG,
            ),
            service_says("link-local"),
        ),
    ]
    good = [
        model("sklearn-mnist", {"configMap": {"name": "mnist-model"}}, modelName="sklearn_mnist"),
        image("good"),
        ws("ws-good", image={"name": "good"}),
        model(
            "from-url",
            {"url": {"url": url, "sha256": sha, "fileName": "mnist.pkl"}},
            modelName="from_url",
        ),
    ]
    bench.apply([m for _, _, m, _ in cases] + good)

    for kind, name, _, ok in cases:
        try:
            wait_until(
                lambda k=kind, n=name, f=ok: f(bench.status(k, n)), f"{kind} {name}", attempts=150
            )
        except AssertionError as e:
            raise AssertionError(
                f"{e}: {json.dumps(bench.status(kind, name))}\n{bench.op.log_tail()}"
            ) from e
    # a good URL source downloads, checks its sha256 and stores the file
    bench.kubectl(
        "wait",
        "--for=condition=Ready",
        "model/from-url",
        "-n",
        bench.ns,
        "--timeout=300s",
        timeout=400,
    )
    st = bench.status("model", "from-url")
    assert st["files"] == ["mnist.pkl"]
    assert st["digest"] == modelfiles.digest({"mnist.pkl": bench.model_file.read_bytes()})
    assert st["versions"][0]["location"] == st["location"]
    # meanwhile the good Webservice was reconciled to Ready, and the operator is up
    bench.kubectl(
        "wait",
        "--for=condition=Ready",
        "webservice/ws-good",
        "-n",
        bench.ns,
        "--timeout=600s",
        timeout=700,
    )
    assert bench.op.alive(), bench.op.log_tail()
    assert len(cases) + len(REJECTED) >= 20
