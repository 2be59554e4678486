"""The Azure MNIST tutorial's score.py runs unchanged on kaci-runtime.

train.py makes the model (seconds, no downloads); it is laid out the way Azure
deploys it (azureml-models/sklearn_mnist/1/sklearn_mnist_model.pkl) and
score.py's `Model.get_model_path('sklearn_mnist')` finds it through the shim.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from kaci_runtime.testing import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "examples" / "mnist"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    subprocess.run([sys.executable, str(MNIST / "train.py"), "--out", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def app(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An app root laid out like Azure's /var/azureml-app."""
    root = tmp_path_factory.mktemp("azureml-app")
    shutil.copy(MNIST / "score.py", root / "score.py")
    version_dir = root / "azureml-models" / "sklearn_mnist" / "1"
    version_dir.mkdir(parents=True)
    shutil.copy(trained / "sklearn_mnist_model.pkl", version_dir)
    return root


@pytest.fixture(scope="module")
def mnist(app: Path) -> Iterator[LocalRuntime]:
    model_dir = app / "azureml-models" / "sklearn_mnist" / "1"
    with LocalRuntime(app / "score.py", model_dir=model_dir, cwd=app) as rt:
        yield rt


def test_train_is_deterministic_and_writes_five_samples(trained: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(MNIST / "train.py"), "--out", str(tmp_path)], check=True)
    first = json.loads((trained / "sample-request.json").read_text())
    again = json.loads((tmp_path / "sample-request.json").read_text())
    assert first == again
    assert len(first["data"]) == 5
    assert all(len(row) == 784 for row in first["data"])
    model = joblib.load(trained / "sklearn_mnist_model.pkl")
    assert model.coef_.shape == (10, 784)


def test_committed_sample_request_matches_train_py(trained: Path) -> None:
    committed = json.loads((MNIST / "sample-request.json").read_text())
    assert committed == json.loads((trained / "sample-request.json").read_text())


def test_score_py_is_the_tutorials(app: Path) -> None:
    source = (MNIST / "score.py").read_text()
    assert "from azureml.core.model import Model" in source
    assert 'Model.get_model_path("sklearn_mnist")' in source
    assert 'json.loads(raw_data)["data"]' in source


def test_mnist_predictions_match_the_model(mnist: LocalRuntime, trained: Path) -> None:
    payload = (trained / "sample-request.json").read_text()
    status, headers, body = mnist.request(
        "POST", "/score", payload, {"Content-Type": "application/json"}
    )
    model = joblib.load(trained / "sklearn_mnist_model.pkl")
    expected = model.predict(np.array(json.loads(payload)["data"])).tolist()
    assert status == 200
    assert json.loads(body) == expected
    assert "x-ms-run-fn-exec-ms" in headers
    assert "azureml.core shim in use" in mnist.log()


def test_mnist_bad_payload_is_a_run_failure(mnist: LocalRuntime) -> None:
    status, headers, _ = mnist.request("POST", "/score", '{"rows": []}')
    assert status == 500
    assert headers["x-ms-run-function-failed"] == "True"
    assert "KeyError: 'data'" in mnist.log()


def test_mnist_with_the_multi_model_root(app: Path) -> None:
    # Several models: AZUREML_MODEL_DIR is the azureml-models folder itself.
    with LocalRuntime(
        app / "score.py", model_dir=app / "azureml-models", cwd=app, log_path=app / "multi.log"
    ) as rt:
        sample = {"data": [[0.0] * 784]}
        status, _, body = rt.request("POST", "/score", json.dumps(sample))
    assert status == 200
    assert len(json.loads(body)) == 1


def test_mnist_without_the_model_fails_at_init(tmp_path: Path) -> None:
    shutil.copy(MNIST / "score.py", tmp_path / "score.py")
    empty = tmp_path / "azureml-models" / "sklearn_mnist" / "1"
    empty.mkdir(parents=True)
    rt = LocalRuntime(tmp_path / "score.py", model_dir=empty, cwd=tmp_path).start()
    assert rt.wait_exit() == 3
    last = rt.log().strip().splitlines()[-1]
    assert "sklearn_mnist" in last
    assert "init()" in last
