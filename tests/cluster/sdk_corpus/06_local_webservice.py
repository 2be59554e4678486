# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# LocalWebservice: deploy, run, edit score.py + reload, update, then deploy_to_cloud
import json
import shutil

from kaci.azureml.core import Environment, Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.webservice import AciWebservice, LocalWebservice

ws = Workspace.from_config()
model = Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
env = Environment("mnist-env")
env.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["azureml-defaults", "scikit-learn", "joblib", "numpy"]
)
shutil.copy("score.py", "score_local.py")
inference_config = InferenceConfig(entry_script="score_local.py", environment=env)
deployment_config = LocalWebservice.deploy_configuration()  # Azure code often names a port here
local_service = Model.deploy(ws, "test", [model], inference_config, deployment_config)
local_service.wait_for_deployment()
print("Local service port: {}".format(local_service.port))
samples = json.load(open("sample-request.json"))["data"]
first = local_service.run(input_data=json.dumps({"data": samples}))

# edit score.py, then reload
with open("score_local.py") as f:
    text = f.read()
with open("score_local.py", "w") as f:
    f.write(text.replace("return y_hat.tolist()", 'return {"reloaded": y_hat.tolist()}'))
local_service.reload()
reloaded = local_service.run(input_data=json.dumps({"data": samples}))

# update with a new inference config
with open("score_v2.py", "w") as f:
    f.write(text.replace("return y_hat.tolist()", 'return {"updated": y_hat.tolist()}'))
local_service.update(inference_config=InferenceConfig(entry_script="score_v2.py", environment=env))
updated = local_service.run(input_data=json.dumps({"data": samples}))
logs = local_service.get_logs()

cloud = local_service.deploy_to_cloud(
    name="from-local",
    deployment_config=AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1),
)
cloud.wait_for_deployment(show_output=True)
in_cloud = cloud.run(json.dumps({"data": samples}))
local_service.delete()
results = {
    "prediction": first,
    "reloaded": reloaded["reloaded"],
    "updated": updated["updated"],
    "cloud": in_cloud["updated"],
    "logs_nonempty": bool(logs),
}
cloud.delete()
json.dump(results, open("results.json", "w"))
