# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# no-code deploy: a scikit-learn model registered with its framework, no InferenceConfig
import json

import sklearn

from kaci.azureml.core import Workspace
from kaci.azureml.core.model import Model
from kaci.azureml.core.resource_configuration import ResourceConfiguration
from kaci.azureml.core.webservice import AciWebservice

ws = Workspace.from_config()
model = Model.register(
    workspace=ws,
    model_name="mnist-sklearn-nocode",
    model_path="./sklearn_mnist_model.pkl",
    model_framework=Model.Framework.SCIKITLEARN,
    model_framework_version=sklearn.__version__,
    resource_configuration=ResourceConfiguration(cpu=0.5, memory_in_gb=1),
    description="no-code sklearn model",
)
service = Model.deploy(
    ws,
    "nocode-mnist",
    [model],
    deployment_config=AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1),
)
service.wait_for_deployment(show_output=True)
samples = json.load(open("sample-request.json"))["data"]
prediction = service.run(json.dumps({"data": samples}))
results = {"prediction": prediction, "framework": model.model_framework}
service.delete()
json.dump(results, open("results.json", "w"))
