# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# register + Environment + InferenceConfig + Model.deploy to ACI (the 2019+ docs' shape)
import json

from kaci import azureml
from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice

print("SDK version:", azureml.core.VERSION)
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

model = Model.register(
    model_path="sklearn_mnist_model.pkl",
    model_name="sklearn_mnist",
    tags={"data": "mnist", "model": "classification"},
    description="Mnist handwriting recognition",
    workspace=ws,
)

env = Environment("mnist-env")
cd = CondaDependencies.create(pip_packages=["azureml-defaults", "scikit-learn", "joblib", "numpy"])
env.python.conda_dependencies = cd
env.register(workspace=ws)

inference_config = InferenceConfig(entry_script="score.py", environment=env)
aciconfig = AciWebservice.deploy_configuration(
    cpu_cores=0.25,
    memory_gb=1,
    tags={"data": "MNIST", "method": "sklearn"},
    description="Predict MNIST",
)
service = Model.deploy(ws, "sklearn-mnist-svc", [model], inference_config, aciconfig)
service.wait_for_deployment(show_output=True)
print(service.scoring_uri)

test_samples = json.load(open("sample-request.json"))["data"]
result = service.run(input_data=json.dumps({"data": test_samples}))
print(result)
results = {
    "prediction": result,
    "state": service.state,
    "version": azureml.core.VERSION,
    "rg": ws.resource_group,
    "location": ws.location,
    "sub": ws.subscription_id,
}
service.delete()
json.dump(results, open("results.json", "w"))
