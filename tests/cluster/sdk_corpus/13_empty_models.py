# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# models=[]: a score.py that needs no registered model; environment_variables reach it
import json

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice

with open("echo_score.py", "w") as f:
    f.write("""
import json
import os


def init():
    global greeting
    greeting = os.environ.get("GREETING", "unset")


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return {"sums": [round(sum(r), 6) for r in rows], "greeting": greeting,
            "example": os.environ.get("EXAMPLE_ENV_VAR")}
""")
ws = Workspace.from_config()
env = Environment("echo-env")
env.python.conda_dependencies = CondaDependencies.create(pip_packages=[])
env.environment_variables["GREETING"] = "hello $USER from kaci"
service = Model.deploy(
    ws,
    "no-models",
    [],
    InferenceConfig(entry_script="echo_score.py", environment=env),
    AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=0.5),
)
service.wait_for_deployment(show_output=True)
samples = json.load(open("sample-request.json"))["data"]
out = service.run(json.dumps({"data": samples}))
results = {
    "sums": out["sums"],
    "greeting": out["greeting"],
    "example": out["example"],
    "models": service.model_ids,
}
service.delete()
json.dump(results, open("results.json", "w"))
