# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# source_directory: score.py imports its sibling module and a package from its folder
import json
import os

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice

os.makedirs("./source_dir/features", exist_ok=True)
with open("./source_dir/utils.py", "w") as f:
    f.write("import json\n\ndef parse(raw):\n    return json.loads(raw)['data']\n")
with open("./source_dir/features/__init__.py", "w") as f:
    f.write("")
with open("./source_dir/features/scale.py", "w") as f:
    f.write("import numpy as np\n\ndef as_array(rows):\n    return np.array(rows, dtype=float)\n")
with open("./source_dir/score.py", "w") as f:
    f.write("""
import os
import joblib
from utils import parse
from features.scale import as_array


def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "sklearn_mnist_model.pkl"))


def run(raw_data):
    return {"predictions": model.predict(as_array(parse(raw_data))).tolist()}
""")

ws = Workspace.from_config()
model = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
env = Environment("srcdir-env")
env.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["scikit-learn", "joblib", "numpy"]
)
inference_config = InferenceConfig(
    source_directory="./source_dir", entry_script="score.py", environment=env
)
service = Model.deploy(
    ws,
    "srcdir-mnist",
    [model],
    inference_config,
    AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1),
)
service.wait_for_deployment(show_output=True)
samples = json.load(open("sample-request.json"))["data"]
out = service.run(json.dumps({"data": samples}))
results = {"prediction": out["predictions"]}
service.delete()
json.dump(results, open("results.json", "w"))
