"""AMLResponse with a generator body: streamed to the client (chunked), not repr()'d."""

import json

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def numbers(count):
    for i in range(count):
        yield json.dumps({"i": i}) + "\n"


def raw_bytes():
    yield b"abc"
    yield b""
    yield b"def"


@rawhttp
def run(request):
    kind = request.args.get("kind", "lines")
    if kind == "lines":
        return AMLResponse(
            numbers(int(request.args.get("n", "5"))), 200, {"Content-Type": "application/x-ndjson"}
        )
    if kind == "bytes":
        return AMLResponse(raw_bytes(), 201)
    if kind == "list":
        return AMLResponse(["a", "b", "c"], 200)
    if kind == "empty":
        return AMLResponse(iter([]), 200)
    return AMLResponse("not streamed", 200)
