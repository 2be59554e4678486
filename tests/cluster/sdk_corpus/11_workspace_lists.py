# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# ws.models / ws.webservices / ws.images / ws.compute_targets, and Model.list / Webservice.list
import json

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice, Webservice

ws = Workspace.from_config()
Model.register(
    ws, model_path="sklearn_mnist_model.pkl", model_name="mnist_listed", tags={"area": "mnist"}
)
for name, m in ws.models.items():
    print("Name:", name, "\tVersion:", m.version, "\tDescription:", m.description, m.tags)
Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
model = ws.models["sklearn_mnist"]  # what score.py loads

env = Environment("mnist-env")
env.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["azureml-defaults", "scikit-learn", "joblib", "numpy"]
)
service = Model.deploy(
    ws,
    "listed-mnist",
    [model],
    InferenceConfig(entry_script="score.py", environment=env),
    AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1),
)
service.wait_for_deployment(show_output=True)
for name, s in ws.webservices.items():
    print(name, s.compute_type, s.state, s.scoring_uri)
aci = Webservice.list(ws, compute_type="ACI")
aks = Webservice.list(ws, compute_type="AKS")
svc = ws.webservices["listed-mnist"]
samples = json.load(open("sample-request.json"))["data"]
prediction = svc.run(json.dumps({"data": samples}))
results = {
    "prediction": prediction,
    "model_tags": ws.models["mnist_listed"].tags,
    "in_webservices": "listed-mnist" in ws.webservices,
    "aci_names": sorted(s.name for s in aci),
    "aks_names": sorted(s.name for s in aks),
    "listed_models": sorted({m.name for m in Model.list(ws, tags=[["area", "mnist"]])}),
    "images": sorted(ws.images),
    "compute_targets": len(ws.compute_targets),
}
svc.delete()
results["after_delete"] = "listed-mnist" in ws.webservices
json.dump(results, open("results.json", "w"))
