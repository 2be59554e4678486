# The Azure tutorial's score.py in its AZUREML_MODEL_DIR form (the one Azure's
# current docs show): kaci-runtime and azureml-inference-server-http both serve
# this same file, unchanged. (The Model.get_model_path form needs azureml-core,
# which azureml-inference-server-http does not install.)
import json
import os

import joblib
import numpy as np


def init():
    global model
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "sklearn_mnist_model.pkl")  # noqa: PTH118
    model = joblib.load(model_path)


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    y_hat = model.predict(data)
    return y_hat.tolist()
