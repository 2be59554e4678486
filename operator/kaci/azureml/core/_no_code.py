"""No-code deploys (Azure's Model.deploy without an InferenceConfig): built-in scorers.

A model registered with its framework deploys with no score.py of the user's: the
framework picks a scoring script kaci ships, and the packages it needs. Azure had
them for scikit-learn, ONNX and TensorFlow; kaci has scikit-learn and ONNX.

- ScikitLearn: `{"data": [[...], ...]}` in, `predict()`'s result out; scikit-learn
  pinned to the registered framework version (a pickle wants the version it was
  made with).
- Onnx: `{"data": ...}` for a model with one input, or `{"<input>": ..., ...}` by
  input name; out, `{"<output>": ..., ...}` for every output of the graph. ONNX
  Runtime is not pinned: the registered version is the ONNX format's (Azure's docs
  register '1.3'), and a newer runtime reads every older opset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kaci.azureml import _manifests
from kaci.azureml.exceptions import WebserviceException

if TYPE_CHECKING:
    from kaci.azureml.core.model import Model

Obj = dict[str, Any]
Frameworks = list[tuple[str | None, str | None]]

SKLEARN_SCORE_PY = '''\
"""kaci's built-in scoring script for a no-code scikit-learn deployment."""
import json
import os

import joblib
import numpy as np


def _model_file():
    root = os.environ["AZUREML_MODEL_DIR"]
    found = []
    for folder, _dirs, files in os.walk(root):
        found += [os.path.join(folder, f) for f in files]
    if len(found) != 1:
        raise RuntimeError(f"no-code deploy wants one model file under {root}, found {found}")
    return found[0]


def init():
    global model
    model = joblib.load(_model_file())


def run(raw_data):
    data = json.loads(raw_data)
    if isinstance(data, dict):
        data = data["data"]
    return np.asarray(model.predict(np.array(data))).tolist()
'''

ONNX_SCORE_PY = '''\
"""kaci's built-in scoring script for a no-code ONNX deployment.

In: {"data": ...} for a model with one input, or {"<input name>": ..., ...}.
Out: {"<output name>": ..., ...}, every output of the graph.
"""
import json
import os

import numpy as np
import onnxruntime

# ONNX Runtime's names of tensor element types, as numpy's.
DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def _model_file():
    """The one .onnx file under AZUREML_MODEL_DIR (beside it may lie external data)."""
    root = os.environ["AZUREML_MODEL_DIR"]
    found = []
    for folder, _dirs, files in os.walk(root):
        found += [os.path.join(folder, f) for f in files]
    graphs = [f for f in found if f.endswith(".onnx")]
    if len(graphs) == 1:
        return graphs[0]
    if not graphs and len(found) == 1:
        return found[0]
    raise RuntimeError(f"no-code deploy wants one .onnx file under {root}, found {found}")


def init():
    global session
    session = onnxruntime.InferenceSession(_model_file(), providers=["CPUExecutionProvider"])


def _feeds(data):
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    if not isinstance(data, dict) or ("data" in data and "data" not in names):
        if len(inputs) != 1:
            raise ValueError(f"the model has inputs {names}: send {{name: value}} for each")
        data = {names[0]: data["data"] if isinstance(data, dict) else data}
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(f"missing model inputs {missing}; the model has inputs {names}")
    return {i.name: np.array(data[i.name], dtype=DTYPES.get(i.type)) for i in inputs}


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def run(raw_data):
    outputs = session.run(None, _feeds(json.loads(raw_data)))
    return {o.name: _jsonable(v) for o, v in zip(session.get_outputs(), outputs)}
'''


@dataclass(frozen=True)
class Scorer:
    """A built-in scorer: its score.py, the packages it needs, and what it is."""

    framework: str
    score_py: str
    pip_packages: tuple[str, ...]

    @property
    def description(self) -> str:
        return f"no-code deploy (kaci's built-in {self.framework} scorer)"


def _sklearn(version: str | None) -> Scorer:
    sklearn = f"scikit-learn=={version}" if version else "scikit-learn"
    return Scorer("ScikitLearn", SKLEARN_SCORE_PY, (sklearn, "joblib", "numpy"))


def _onnx(version: str | None) -> Scorer:
    del version  # the ONNX format's version, which any newer runtime reads
    return Scorer("Onnx", ONNX_SCORE_PY, ("onnxruntime", "numpy"))


SCORERS = {"ScikitLearn": _sklearn, "Onnx": _onnx}


def frameworks_of(models: Iterable[Model]) -> Frameworks:
    """Each model's (framework, framework version), as Model.register recorded them."""
    return [(m.model_framework, m.properties.get("frameworkVersion")) for m in models]


def scorer(frameworks: Frameworks) -> Scorer:
    """The built-in scorer for the models' (framework, framework version) pairs."""
    if not frameworks:
        raise WebserviceException("a no-code deploy needs a model (its framework picks the scorer)")
    if len(frameworks) != 1:
        raise WebserviceException("no-code deploy: Azure and kaci deploy one model this way")
    framework, version = frameworks[0]
    make = SCORERS.get(framework or "")
    if make is None:
        raise WebserviceException(
            f"no-code deploy: kaci has built-in scorers for {' and '.join(SCORERS)} models, "
            f"not {framework or 'a model registered without model_framework'}; give an "
            "InferenceConfig with your score.py"
        )
    return make(version)


def no_code_spec(frameworks: Frameworks) -> Obj:
    """The Image spec for a deploy without InferenceConfig (Azure's no-code deploy)."""
    from kaci.azureml.core.conda_dependencies import CondaDependencies

    picked = scorer(frameworks)
    deps = CondaDependencies.create(pip_packages=list(picked.pip_packages), python_version="3.11")
    return _manifests.image_config_spec(
        execution_script=picked.score_py,
        conda_file=deps.serialize_to_string(),
        description=picked.description,
    )
