"""Azure's "Deploy web services to Azure Container Instances" article, run on kaci.

The article's code (docs.microsoft.com, how-to-deploy-to-aci, 2018-09) with only
the import lines changed (`azureml.core` -> `kaci.azureml.core`); the workspace
line is the article's own `Workspace.from_config()`, which here reads
`.azureml/config.json` = {"context": ..., "namespace": ...}.

Two things the article leaves to the reader are done by this script:
- the article tells you to edit score.py's init() before option 1 (the model is
  registered under its file name there) and to use your own score.py otherwise:
  the script makes that edit, and undoes it afterwards;
- the article downloads MNIST's test images; there are no downloads here, so the
  test samples are the MNIST-like digits of examples/mnist/train.py.
It runs the three options one after the other; each service is tested with 5
samples and then deleted (the article's clean-up step), since three services of
one core each do not fit a two-core node at once. What was sent and received is
written to walkthrough-results.json.

    cd <folder with score.py, myenv.yml, sklearn_mnist_model.pkl, .azureml/config.json>
    python examples/azureml_walkthrough.py
"""

# ruff: noqa: E402, F811, I001
# fmt: off
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "mnist"))

results = {}

# -- Prerequisites: the workspace object -------------------------------------------
from kaci.azureml.core import Workspace

ws = Workspace.from_config()

# -- Configure an image ---------------------------------------------------------------
from kaci.azureml.core.image import ContainerImage

image_config = ContainerImage.image_configuration(execution_script = "score.py",
                                                  runtime = "python",
                                                  conda_file = "myenv.yml",
                                                  description = "Image with mnist model",
                                                  tags = {"data": "mnist", "type": "classification"}
                                                 )

# -- Configure the ACI container ---------------------------------------------------------
from kaci.azureml.core.webservice import AciWebservice

aciconfig = AciWebservice.deploy_configuration(cpu_cores = 1,
                                               memory_gb = 1,
                                               tags = {"data": "mnist", "type": "classification"},
                                               description = 'Handwriting recognition')

# -- Register a model file ----------------------------------------------------------------
from kaci.azureml.core.model import Model

model_name = "sklearn_mnist"
model = Model.register(model_path = "sklearn_mnist_model.pkl",
                        model_name = model_name,
                        tags = {"data": "mnist", "type": "classification"},
                        description = "Mnist handwriting recognition",
                        workspace = ws)

# -- Test the web service (the article's code, as a function run after each option) -----
# Load Data: MNIST-like digits made locally (the article downloads MNIST here).
from train import mnist_like

X_test, _ = mnist_like()

import numpy as np
import json


def test_web_service(service):
    # find 5 random samples from test set
    n = 5
    sample_indices = np.random.permutation(X_test.shape[0])[0:n]

    test_samples = json.dumps({"data": X_test[sample_indices].tolist()})
    test_samples = bytes(test_samples, encoding = 'utf8')

    # predict using the deployed model
    prediction = service.run(input_data = test_samples)
    print(prediction)
    results[service.name] = {"samples": X_test[sample_indices].tolist(),
                             "prediction": prediction, "state": service.state,
                             "scoring_uri": service.scoring_uri}
    Path("walkthrough-results.json").write_text(json.dumps(results))


# -- Option 1: Deploy from model file ---------------------------------------------------------
# The article: "Open the prerequisite model file, score.py, and change the init() section".
score = Path("score.py")
original_score = score.read_text()
score.write_text(original_score.replace("Model.get_model_path(\"sklearn_mnist\")",
                                        "Model.get_model_path('sklearn_mnist_model.pkl')"))

try:
    from kaci.azureml.core.webservice import Webservice

    service_name = 'aci-mnist-1'
    service = Webservice.deploy(deployment_config = aciconfig,
                                    image_config = image_config,
                                    model_paths = ['sklearn_mnist_model.pkl'],
                                    name = service_name,
                                    workspace = ws)

    service.wait_for_deployment(show_output = True)
    print(service.state)
finally:
    # Undo the edit, whatever happened: options 2 and 3 use the original score.py.
    score.write_text(original_score)
test_web_service(service)
service.delete()

# -- Option 2: Deploy from registered model ------------------------------------------------------
from kaci.azureml.core.webservice import Webservice

service_name = 'aci-mnist-2'
service = Webservice.deploy_from_model(deployment_config = aciconfig,
                                       image_config = image_config,
                                       models = [model], # this is the registered model object
                                       name = service_name,
                                       workspace = ws)
service.wait_for_deployment(show_output = True)
print(service.state)
test_web_service(service)
service.delete()

# -- Option 3: Deploy from image -------------------------------------------------------------------
from kaci.azureml.core.image import ContainerImage

image = ContainerImage.create(name = "myimage1",
                              models = [model], # this is the registered model object
                              image_config = image_config,
                              workspace = ws)

image.wait_for_creation(show_output = True)

from kaci.azureml.core.webservice import Webservice

service_name = 'aci-mnist-3'
service = Webservice.deploy_from_image(deployment_config = aciconfig,
                                            image = image,
                                            name = service_name,
                                            workspace = ws)
service.wait_for_deployment(show_output = True)
print(service.state)
test_web_service(service)
service.delete()

# -- Clean up resources: each service was deleted after its test (service.delete()).
assert Webservice.list(ws) == []
