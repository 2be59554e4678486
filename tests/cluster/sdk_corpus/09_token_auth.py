# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# token auth: AKS config with token_auth_enabled; get_token() gives (token, refresh_by), run() sends it
import json
import warnings

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AksWebservice
from kaci.azureml.exceptions import WebserviceException

ws = Workspace.from_config()
model = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
env = Environment("mnist-env")
env.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["azureml-defaults", "scikit-learn", "joblib", "numpy"]
)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    aks_config = AksWebservice.deploy_configuration(
        num_replicas=1, cpu_cores=0.25, memory_gb=1, token_auth_enabled=True, auth_enabled=False
    )
service = Model.deploy(
    ws,
    "token-mnist",
    [model],
    InferenceConfig(entry_script="score.py", environment=env),
    aks_config,
)
service.wait_for_deployment(show_output=True)
try:
    token, refresh_by = service.get_token()
    refused = None
except WebserviceException as e:
    token, refresh_by, refused = "", None, str(e)
samples = json.load(open("sample-request.json"))["data"]
prediction = service.run(json.dumps({"data": samples}))
results = {
    "prediction": prediction,
    "token_refused": refused,
    "token_parts": len(token.split(".")),
    "refresh_by": refresh_by.isoformat() if refresh_by else None,
    "auth": service.auth_enabled,
    "warned": [str(w.message) for w in caught],
    "replicas": service.num_replicas,
    "autoscale": service.autoscale_enabled,
}
service.delete()
json.dump(results, open("results.json", "w"))
