# The Azure ML tutorial's scoring script ("Deploy an image classification model
# in Azure Container Instances"), unchanged in what it does: init() finds the
# registered model 'sklearn_mnist' with Model.get_model_path and loads it with
# joblib; run() takes the request body as a string, {"data": [[784 floats], ...]},
# and returns the predicted digits as a list.
import json

import joblib
import numpy as np
from azureml.core.model import Model


def init():
    global model
    # retrieve the path to the model file using the model name
    model_path = Model.get_model_path("sklearn_mnist")
    model = joblib.load(model_path)


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    # make prediction
    y_hat = model.predict(data)
    # you can return any data type as long as it is JSON-serializable
    return y_hat.tolist()
