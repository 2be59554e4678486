"""The Azure ACI article's three deploy options, through the `kaci` CLI.

Uses the SDK test's fixtures (a namespace with its own operator instance) and
runs `python -m kaci.cli` in a folder holding Azure's `.azureml/config.json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import yaml
from kaci.azureml.core import Workspace
from support.sdk import mnist_workdir  # type: ignore[import-not-found,unused-ignore]


def kaci(work: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaci.cli", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(work: Path, *args: str) -> str:
    res = kaci(work, *args)
    assert res.returncode == 0, f"kaci {' '.join(args)}: {res.returncode}\n{res.stderr[-3000:]}"
    return res.stdout


def test_article_walkthrough_with_the_cli(
    sdk_workspace: Workspace,
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    mnist_workdir(work, sdk_workspace)
    model = joblib.load(work / "sklearn_mnist_model.pkl")
    sample = json.loads((work / "sample-request.json").read_text())
    expected = model.predict(np.array(sample["data"])).tolist()
    # Option 1 registers the file under its own name: the article's edited score.py.
    score1 = (
        (work / "score.py")
        .read_text()
        .replace(
            'Model.get_model_path("sklearn_mnist")',
            "Model.get_model_path('sklearn_mnist_model.pkl')",
        )
    )
    (work / "score1.py").write_text(score1)
    # Half a core each (the article asks 1): a key rotation rolls a second Pod beside the
    # first, and the test node has 2 cores in all.
    common = ["--conda-file", "myenv.yml", "--cpu-cores", "0.5", "--memory-gb", "1", "-q"]

    registered = json.loads(
        ok(
            work,
            "-o",
            "json",
            "model",
            "register",
            "--name",
            "sklearn_mnist",
            "--path",
            "sklearn_mnist_model.pkl",
            "--tag",
            "data=mnist",
            "--tag",
            "type=classification",
            "--description",
            "Mnist handwriting recognition",
        )
    )
    assert (registered["id"], registered["tags"]) == (
        "sklearn_mnist:1",
        {"data": "mnist", "type": "classification"},
    )
    listed = json.loads(ok(work, "-o", "json", "model", "list"))
    assert [m["id"] for m in listed] == ["sklearn_mnist:1"]
    assert "sklearn_mnist" in ok(work, "model", "list")  # the table
    path = ok(work, "model", "download", "sklearn_mnist:1", "--target-dir", "dl").strip()
    assert Path(work / path).read_bytes() == (work / "sklearn_mnist_model.pkl").read_bytes()

    # Option 1: from the model file.
    svc = json.loads(
        ok(
            work,
            "-o",
            "json",
            "webservice",
            "deploy",
            "aci-mnist-1",
            "--model-file",
            "sklearn_mnist_model.pkl",
            "--script",
            "score1.py",
            *common,
        )
    )
    assert svc["state"] == "Healthy"
    assert (
        json.loads(ok(work, "webservice", "run", "aci-mnist-1", "--file", "sample-request.json"))
        == expected
    )
    ok(work, "webservice", "delete", "aci-mnist-1")

    # Option 2: from the registered model.
    svc = json.loads(
        ok(
            work,
            "-o",
            "json",
            "webservice",
            "deploy",
            "aci-mnist-2",
            "--model",
            "sklearn_mnist",
            "--script",
            "score.py",
            *common,
        )
    )
    assert svc["state"] == "Healthy"
    assert svc["modelIds"] == ["sklearn_mnist:1"]
    assert (
        json.loads(ok(work, "webservice", "run", "aci-mnist-2", "--data", json.dumps(sample)))
        == expected
    )
    ok(work, "webservice", "delete", "aci-mnist-2")

    # Option 3: from an image built first, here with auth on.
    image = json.loads(
        ok(
            work,
            "-o",
            "json",
            "image",
            "create",
            "myimage1",
            "--model",
            "sklearn_mnist:1",
            "--script",
            "score.py",
            "--conda-file",
            "myenv.yml",
            "-q",
        )
    )
    assert (image["id"], image["creationState"]) == ("myimage1:1", "Succeeded")
    # The build log's tail, in either driver's words (buildkit has no step for the
    # Dockerfile's closing CMD, which named kaci_runtime in the docker driver's log).
    build_log = ok(work, "image", "logs", "myimage1")
    assert "pushed" in build_log, build_log
    assert "/myimage1:" in build_log, build_log
    svc = json.loads(
        ok(
            work,
            "-o",
            "json",
            "webservice",
            "deploy",
            "aci-mnist-3",
            "--image",
            "myimage1:1",
            "--cpu-cores",
            "0.5",
            "--memory-gb",
            "1",
            "--auth",
            "-q",
        )
    )
    assert (svc["state"], svc["authEnabled"], svc["imageId"]) == ("Healthy", True, "myimage1:1")
    assert (
        json.loads(ok(work, "webservice", "run", "aci-mnist-3", "--file", "sample-request.json"))
        == expected
    )
    keys = json.loads(ok(work, "-o", "json", "webservice", "keys", "aci-mnist-3"))
    ok(work, "webservice", "regen-key", "aci-mnist-3", "--key", "Secondary")
    new_keys = json.loads(ok(work, "-o", "json", "webservice", "keys", "aci-mnist-3"))
    assert new_keys["primaryKey"] == keys["primaryKey"]
    assert new_keys["secondaryKey"] != keys["secondaryKey"]
    shown = yaml.safe_load(ok(work, "-o", "yaml", "webservice", "show", "aci-mnist-3"))
    assert shown["scoringUri"] == (
        f"http://aci-mnist-3.{sdk_workspace.namespace}.svc.cluster.local/score"
    )
    table = ok(work, "webservice", "list").splitlines()
    assert table[0].split()[:2] == ["NAME", "STATE"]
    assert table[1].split()[:2] == ["aci-mnist-3", "Healthy"]
    assert ok(work, "webservice", "logs", "aci-mnist-3", "--tail", "50").strip()

    # Refusals and not-found answers carry the documented exit codes, in one line.
    used = kaci(work, "image", "delete", "myimage1")
    assert used.returncode == 1
    assert "aci-mnist-3" in used.stderr
    ok(work, "webservice", "delete", "aci-mnist-3")
    ok(work, "webservice", "delete", "aci-mnist-3")  # already gone: still 0
    missing = kaci(work, "webservice", "show", "aci-mnist-3")
    assert missing.returncode == 3
    assert missing.stderr.startswith("error: WebserviceNotFound")
    assert len(missing.stderr.strip().splitlines()) == 1
    assert kaci(work, "model", "show", "no_such_model").returncode == 3
    assert kaci(work, "model", "show", "sklearn_mnist:7").returncode == 3
    bad = kaci(work, "webservice", "deploy", "Bad_Name", "--image", "myimage1")
    assert bad.returncode == 2
    assert "invalid service name" in bad.stderr
    ok(work, "image", "delete", "myimage1")
    ok(work, "model", "delete", "sklearn_mnist")
    assert json.loads(ok(work, "-o", "json", "model", "list")) == []
