# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# the 2018 tutorial: myenv.yml written by CondaDependencies, ContainerImage, deploy_from_image
import json

from kaci.azureml.core import Workspace
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.image import ContainerImage
from kaci.azureml.core.model import Model
from kaci.azureml.core.webservice import AciWebservice, Webservice

ws = Workspace.from_config()
model = (
    Model(ws, "sklearn_mnist")
    if "sklearn_mnist" in ws.models
    else Model.register(ws, "sklearn_mnist_model.pkl", "sklearn_mnist")
)

myenv = CondaDependencies()
myenv.add_conda_package("scikit-learn")
myenv.add_pip_package("joblib")
myenv.add_pip_package("numpy")
with open("myenv.yml", "w") as f:
    f.write(myenv.serialize_to_string())
with open("myenv.yml", "r") as f:
    print(f.read())

image_config = ContainerImage.image_configuration(
    execution_script="score.py",
    runtime="python",
    conda_file="myenv.yml",
    description="Image with mnist model",
    tags={"data": "mnist", "type": "classification"},
)
image = ContainerImage.create(
    name="myimage1", models=[model], image_config=image_config, workspace=ws
)
image.wait_for_creation(show_output=True)

aciconfig = AciWebservice.deploy_configuration(cpu_cores=0.25, memory_gb=1)
service = Webservice.deploy_from_image(
    deployment_config=aciconfig, image=image, name="aci-mnist-2018", workspace=ws
)
service.wait_for_deployment(show_output=True)
samples = json.load(open("sample-request.json"))["data"]
prediction = service.run(input_data=json.dumps({"data": samples}))
results = {"prediction": prediction, "image": image.id}
service.delete()
json.dump(results, open("results.json", "w"))
