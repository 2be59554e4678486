"""The Azure ACI article, run with kaci.azureml against the real local cluster.

A kaci operator runs as a subprocess for each test (support.kaci_operator.run_operator,
shared with the operator's cluster tests) with an instance name of its own; the
SDK labels what it creates with it (Workspace(operator=...)), so that operator
handles exactly this test's objects and no other operator touches them.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from kaci.azureml.core import Image, Workspace
from kaci.azureml.core.image import ContainerImage
from kaci.azureml.core.model import Model
from kaci.azureml.core.webservice import AciWebservice, Webservice
from kaci.azureml.exceptions import (
    FailedStateException,
    ModelNotFoundException,
    ResourceNotFoundException,
    WebserviceException,
)
from support.sdk import mnist_workdir  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CONTEXT = "kaci-local"  # tests/cluster/conftest.py refuses any other context
MNIST = ROOT / "examples" / "mnist"
WALKTHROUGH = ROOT / "examples" / "azureml_walkthrough.py"


def test_azure_aci_article_walkthrough(sdk_workspace: Workspace, tmp_path: Path) -> None:
    ws = sdk_workspace
    (tmp_path / "work").mkdir()
    work = mnist_workdir(tmp_path / "work", ws)
    proc = subprocess.run(
        [sys.executable, str(WALKTHROUGH)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    results = json.loads((work / "walkthrough-results.json").read_text())
    assert sorted(results) == ["aci-mnist-1", "aci-mnist-2", "aci-mnist-3"]
    model = joblib.load(work / "sklearn_mnist_model.pkl")
    for name, r in results.items():
        assert r["state"] == "Healthy"
        assert r["scoring_uri"] == f"http://{name}.{ws.namespace}.svc.cluster.local/score"
        assert len(r["samples"]) == 5
        # The deployed model answers what the model file predicts locally.
        assert r["prediction"] == model.predict(np.array(r["samples"])).tolist()
    assert "Healthy" in proc.stdout
    assert 'ACI service creation operation finished, operation "Succeeded"' in proc.stdout
    # The article's clean-up deleted the services; the model and image stay registered.
    assert Webservice.list(ws) == []
    registered = Model(ws, "sklearn_mnist")
    assert (registered.id, registered.tags) == (
        "sklearn_mnist:1",
        {"data": "mnist", "type": "classification"},
    )
    image = Image(ws, name="myimage1")
    assert image.creation_state == "Succeeded"
    assert f"/kaci/{ws.namespace}/myimage1" in (image.image_location or "")
    assert image.model_ids == ["sklearn_mnist:1"]


def test_model_versions_large_files_and_download(
    sdk_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = sdk_workspace
    folder = tmp_path / "bert"
    folder.mkdir()
    weights = secrets.token_bytes(1536 * 1024)  # too large for a ConfigMap: goes to the registry
    (folder / "weights.bin").write_bytes(weights)
    (folder / "vocab").mkdir()
    (folder / "vocab" / "words.txt").write_text("a\nb\n")
    m1 = Model.register(
        ws,
        model_path=str(folder),
        model_name="Bert_Large",
        tags={"size": "large"},
        model_framework="Custom",
        timeout_sec=600,
    )
    assert (m1.name, m1.version, m1.id, m1.model_framework) == (
        "Bert_Large",
        1,
        "Bert_Large:1",
        "Custom",
    )
    obj = ws._kube.get("models", m1._object_name)
    assert obj is not None
    assert obj["spec"]["source"]["image"]["reference"].startswith("127.0.0.1:5000/")
    assert sorted(m1.files) == ["bert/vocab/words.txt", "bert/weights.bin"]

    # Same files again: the same version (kaci versions by content).
    assert Model.register(ws, str(folder), "Bert_Large", timeout_sec=600).version == 1
    (folder / "weights.bin").write_bytes(weights[::-1])
    m2 = Model.register(ws, str(folder), "Bert_Large", timeout_sec=600)
    assert m2.version == 2

    old = Path(Model(ws, "Bert_Large", version=1).download(str(tmp_path / "v1")))
    assert old == tmp_path / "v1" / "bert"
    assert (old / "weights.bin").read_bytes() == weights
    assert (old / "vocab" / "words.txt").read_text() == "a\nb\n"
    new = Model(ws, id="Bert_Large:2").download(str(tmp_path / "v2"))
    assert (Path(new) / "weights.bin").read_bytes() == weights[::-1]
    with pytest.raises(WebserviceException, match="already exists"):
        Model(ws, "Bert_Large", version=1).download(str(tmp_path / "v1"))

    assert [m.version for m in Model.list(ws, name="Bert_Large")] == [1, 2]
    assert [m.id for m in Model.list(ws, latest=True)] == ["Bert_Large:2"]
    assert Model.list(ws, tags=[["size", "small"]]) == []
    with pytest.raises(ModelNotFoundException):
        Model(ws, "Bert_Large", version=3)
    with pytest.raises(ModelNotFoundException):
        Model(ws, "no_such_model")

    # get_model_path with a workspace downloads into Azure's cache layout.
    monkeypatch.chdir(tmp_path)
    path = Model.get_model_path("Bert_Large", _workspace=ws)
    assert Path(path).resolve() == (tmp_path / "azureml-models" / "Bert_Large" / "2" / "bert")
    assert Model.get_model_path("Bert_Large", version=2) == path

    m2.delete()
    with pytest.raises(ModelNotFoundException):
        Model(ws, "Bert_Large")

    # Small flat files go to a ConfigMap owned by the Model; a new version's ConfigMap
    # replaces the old one once the operator stored the version in the registry.
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("one")
    t1 = Model.register(ws, str(tiny), "tiny", timeout_sec=600)
    tiny.write_text("two")
    t2 = Model.register(ws, str(tiny), "tiny", timeout_sec=600)
    assert (t1.version, t2.version) == (1, 2)
    maps = ws._kube.list_configmaps(f"kaci.dev/model={t2._object_name}")
    assert len(maps) == 1
    (owner,) = maps[0]["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Model", t2._object_name)
    assert Path(Model(ws, "tiny", version=1).download(str(tmp_path / "t1"))).read_text() == "one"


ECHO_SCORE = """
import json
from azureml.core.model import Model

def init():
    global path
    path = Model.get_model_path("factor.txt")
    print("init done, model at", path, flush=True)

def run(raw_data):
    factor = float(open(path).read())
    return [x * factor for x in json.loads(raw_data)["data"]]
"""

BROKEN_SCORE = """
def init():
    raise RuntimeError("model file is corrupt")

def run(raw_data):
    return raw_data
"""


def test_webservice_keys_update_logs_and_failures(sdk_workspace: Workspace, tmp_path: Path) -> None:
    ws = sdk_workspace
    (tmp_path / "factor.txt").write_text("2")
    (tmp_path / "score.py").write_text(ECHO_SCORE)
    image_config = ContainerImage.image_configuration(
        execution_script=str(tmp_path / "score.py"), runtime="python"
    )
    config = AciWebservice.deploy_configuration(
        cpu_cores=0.25, memory_gb=0.5, auth_enabled=True, tags={"team": "a"}
    )
    svc = Webservice.deploy(ws, "echo-svc", [str(tmp_path / "factor.txt")], image_config, config)
    svc.wait_for_deployment(show_output=True, timeout_sec=900)
    assert svc.state == "Healthy"
    assert svc.swagger_uri == f"http://echo-svc.{ws.namespace}.svc.cluster.local/swagger.json"
    assert (svc.cpu_cores, svc.memory_gb, svc.auth_enabled) == (0.25, 0.5, True)

    # run() from outside the cluster: the service proxy says 401, the retry with the key
    # goes through a port-forward and succeeds.
    assert svc.run({"data": [1, 2.5]}) == [2.0, 5.0]
    primary, secondary = svc.get_keys()
    assert primary != secondary
    assert len(primary) >= 16
    svc.regen_key("Primary")
    assert svc.get_keys() == (svc.get_keys()[0], secondary)
    assert svc.get_keys()[0] != primary
    assert Webservice(ws, "echo-svc").run(b'{"data": [3]}') == [6.0]
    with pytest.raises(WebserviceException, match="invalid value provided for key"):
        svc.regen_key("Tertiary")

    assert "init done" in svc.get_logs()
    with pytest.raises(WebserviceException, match="already exists"):
        Webservice.deploy(ws, "echo-svc", [str(tmp_path / "factor.txt")], image_config, config)

    svc.update(description="doubles numbers", tags={"team": "b"})
    svc.wait_for_deployment(timeout_sec=600)
    fresh = Webservice(ws, "echo-svc")
    assert (fresh.description, fresh.tags, fresh.state) == (
        "doubles numbers",
        {"team": "b"},
        "Healthy",
    )
    assert [s.name for s in Webservice.list(ws, tags=[["team", "b"]])] == ["echo-svc"]

    svc.delete()
    svc.delete()  # idempotent, like Azure's "No service with name ... found to delete."
    with pytest.raises(ResourceNotFoundException):
        Webservice(ws, "echo-svc")

    # A score.py whose init() fails: the deployment ends Failed with the reason.
    (tmp_path / "broken.py").write_text(BROKEN_SCORE)
    broken = Webservice.deploy(
        ws,
        "broken-svc",
        [str(tmp_path / "factor.txt")],
        ContainerImage.image_configuration(str(tmp_path / "broken.py"), "python"),
        AciWebservice.deploy_configuration(cpu_cores=0.1, memory_gb=0.5),
    )
    with pytest.raises(FailedStateException, match="get_logs"):
        broken.wait_for_deployment(timeout_sec=600)
    assert broken.state == "Failed"
    assert "model file is corrupt" in (broken.error or {}).get("message", "")
