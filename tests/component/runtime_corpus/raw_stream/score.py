"""@rawhttp reading the raw body: request.stream, get_data(), binary uploads."""

import hashlib

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    mode = request.args.get("mode", "stream")
    if mode == "stream":
        body = request.stream.read()
    elif mode == "text":
        return {"text": request.get_data(as_text=True)}
    elif mode == "echo":
        return AMLResponse(request.get_data(), 200, {"Content-Type": "application/octet-stream"})
    else:
        body = request.data
    return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(), "first": list(body[:4])}
