"""The built-in no-code scorers run as the scoring runtime runs a score.py: init() with
AZUREML_MODEL_DIR set, then run(raw JSON). Real models: a fitted LogisticRegression,
as a joblib pickle and as the ONNX graph of its predict(); both must answer as the
model itself does."""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from kaci.azureml.core._no_code import ONNX_SCORE_PY, SKLEARN_SCORE_PY, frameworks_of, scorer
from kaci.azureml.exceptions import WebserviceException
from onnx_models import logistic_regression_onnx  # type: ignore[import-not-found,unused-ignore]
from sklearn.linear_model import LogisticRegression

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def classifier() -> tuple[LogisticRegression, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] + 2 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    return LogisticRegression(max_iter=500).fit(x, y), x[:9]


def load(score_py: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The scoring script as a module, init() done, as the runtime starts it: score.py
    in root/app, the models in root/models (AZUREML_MODEL_DIR)."""
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root / "models"))
    (root / "app").mkdir()
    (root / "app" / "score.py").write_text(score_py)
    spec = importlib.util.spec_from_file_location(f"score_{root.name}", root / "app" / "score.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    return module


def test_sklearn_scorer_answers_as_the_model(
    classifier: tuple[LogisticRegression, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, samples = classifier
    (tmp_path / "models").mkdir()
    joblib.dump(model, tmp_path / "models" / "model.pkl")
    score = load(SKLEARN_SCORE_PY, tmp_path, monkeypatch)
    expected = model.predict(samples).tolist()
    assert score.run(json.dumps({"data": samples.tolist()})) == expected
    assert score.run(json.dumps(samples.tolist())) == expected


def test_onnx_scorer_answers_as_the_model(
    classifier: tuple[LogisticRegression, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, samples = classifier
    # Azure's layout: the model folder holds the graph, maybe beside other files.
    (tmp_path / "models" / "1").mkdir(parents=True)
    logistic_regression_onnx(model, tmp_path / "models" / "1" / "model.onnx")
    (tmp_path / "models" / "1" / "README.txt").write_text("trained on the 7th")
    score = load(ONNX_SCORE_PY, tmp_path, monkeypatch)
    expected = model.predict(samples).tolist()
    by_data = score.run(json.dumps({"data": samples.tolist()}))
    assert set(by_data) == {"label", "scores"}
    assert by_data["label"] == expected
    assert np.allclose(by_data["scores"], model.decision_function(samples), atol=1e-4)
    # By input name, and a bare array for a one-input model: the same answer.
    assert score.run(json.dumps({"float_input": samples.tolist()})) == by_data
    assert score.run(json.dumps(samples.tolist()))["label"] == expected
    # Integers in, cast to the graph's float input.
    assert (
        score.run(json.dumps({"data": [[1, 0, 0, 0, 0, 0]]}))["label"]
        == model.predict(np.array([[1.0, 0, 0, 0, 0, 0]])).tolist()
    )
    with pytest.raises(ValueError, match=r"missing model inputs \['float_input'\]"):
        score.run(json.dumps({"pixels": samples.tolist()}))


def test_onnx_scorer_wants_one_graph(
    classifier: tuple[LogisticRegression, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, _ = classifier
    (tmp_path / "models").mkdir()
    logistic_regression_onnx(model, tmp_path / "models" / "a.onnx")
    logistic_regression_onnx(model, tmp_path / "models" / "b.onnx")
    with pytest.raises(RuntimeError, match=r"wants one \.onnx file"):
        load(ONNX_SCORE_PY, tmp_path, monkeypatch)


def test_scorer_by_framework() -> None:
    sklearn = scorer([("ScikitLearn", "1.5.2")])
    assert sklearn.pip_packages == ("scikit-learn==1.5.2", "joblib", "numpy")
    assert scorer([("ScikitLearn", None)]).pip_packages[0] == "scikit-learn"
    # The registered version of an ONNX model is the format's, not a runtime pin.
    assert scorer([("Onnx", "1.3")]).pip_packages == ("onnxruntime", "numpy")
    assert scorer([("Onnx", None)]).description == "no-code deploy (kaci's built-in Onnx scorer)"
    with pytest.raises(WebserviceException, match="not a model registered without"):
        scorer([(None, None)])
    with pytest.raises(WebserviceException, match="not Multi"):
        scorer([("Multi", None)])


def test_frameworks_of_reads_what_register_recorded() -> None:
    models = [
        types.SimpleNamespace(model_framework="Onnx", properties={"frameworkVersion": "1.3"}),
        types.SimpleNamespace(model_framework=None, properties={}),
    ]
    assert frameworks_of(models) == [("Onnx", "1.3"), (None, None)]  # type: ignore[arg-type]
