# ruff: noqa  (written the way Azure ML notebooks and docs wrote it, on purpose)
# no-code deploy of an ONNX model (the v1 docs' "ONNX models" section): registered with
# its framework and the ONNX version, deployed with no InferenceConfig and no config
import json

from kaci.azureml.core import Model, Workspace

ws = Workspace.from_config()
model = Model.register(
    workspace=ws,
    model_name="mnist-sample",  # Name of the registered model in your workspace.
    model_path="mnist-model.onnx",  # Local ONNX model to upload and register as a model.
    model_framework=Model.Framework.ONNX,  # Framework used to create the model.
    model_framework_version="1.3",  # Version of ONNX used to create the model.
    description="Onnx MNIST model",
)

service_name = "onnx-mnist-service"
service = Model.deploy(ws, service_name, [model])
service.wait_for_deployment(show_output=True)

samples = json.load(open("sample-request.json"))["data"]
output = service.run(json.dumps({"data": samples}))
by_name = service.run(json.dumps({"float_input": samples}))
results = {
    "prediction": output["label"],
    "outputs": sorted(output),
    "same_by_name": by_name == output,
    "framework": model.model_framework,
    "compute_type": service.compute_type,
}
service.delete()
json.dump(results, open("results.json", "w"))
