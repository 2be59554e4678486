"""An undecorated run() that returns AMLResponse objects sometimes."""

import json

from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


def run(raw_data):
    data = json.loads(raw_data)
    if data.get("respond"):
        return AMLResponse(
            json.dumps({"wrapped": data}),
            207,
            {"Content-Type": "application/json", "X-From": "run"},
        )
    if data.get("fail"):
        return AMLResponse({"message": "bad input, says run()"}, 422, json_str=True)
    return data
